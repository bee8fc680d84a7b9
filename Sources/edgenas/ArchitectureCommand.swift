import ArgumentParser
import Foundation
import Reports
import Vision

/// Shows what an architecture is: its layers, shapes, parameters, MACs and activation memory,
/// per block and per layer, computed from its layer graph (no torch needed).
struct ArchitectureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "arch",
        abstract: "Describe a detector architecture: layers, parameters, MACs, activation memory.",
        discussion: """
        NAME is an architecture's short name: kN (head kernel), gN (head groups), cN (head channels), \
        wN (input width), and optionally hN (input height, for a non-square input; the width's by default), nN (classes), sN (stem), stA.B.C (stage channels), rA.B.C \
        (stage repeats), nkN (neck channels), sppN (SPP branches). Parts left out take FastestDet's \
        values, e.g. k5-g1-c96-w320 is the baseline.
        """)

    @Argument(help: "The architecture's short name.")
    var name: String = DetectorArchitecture.baseline.description

    @Flag(help: "List every layer, not only the blocks.")
    var layers = false

    @Option(help: "Also write the layer table to this CSV file.")
    var csv: String?

    func run() throws {
        let architecture = try DetectorArchitecture(shortName: name)
        let graph = try DetectorGraph(architecture)
        print("\(architecture)  input \(architecture.inputWidth)x\(architecture.inputHeight)  output \(graph.output.outputShape)")
        print(String(format: "parameters %d  MACs %.2f M  peak activations %.2f MB (float32, batch 1)",
                     graph.parameterCount, Double(graph.multiplyAccumulates) / 1e6, Double(graph.peakActivationElements * 4) / 1e6))
        print("")

        let totalMACs = Double(max(1, graph.multiplyAccumulates))
        var blocks = Table(columns: ["block", "layers", "params", "MMACs", "MACs %"])
        for block in NetworkBlock.allCases {
            let nodes = graph.nodes.filter { $0.block == block }
            let macs = nodes.reduce(0) { $0 + $1.multiplyAccumulates }
            blocks.rows.append([block.rawValue, String(nodes.count), String(nodes.reduce(0) { $0 + $1.parameterCount }),
                                String(format: "%.2f", Double(macs) / 1e6), String(format: "%.1f", 100 * Double(macs) / totalMACs)])
        }
        print(blocks.text)

        let layerTable = Table(columns: ["layer", "block", "operation", "output", "params", "MACs"], rows: graph.nodes.map { node in
            [node.name, node.block.rawValue, operationSummary(node.operation), node.outputShape.description,
             String(node.parameterCount), String(node.multiplyAccumulates)]
        })
        if layers { print(layerTable.text) }
        if let csv {
            try layerTable.csv.write(toFile: csv, atomically: true, encoding: .utf8)
            print("wrote \(csv)")
        }
    }

    private func operationSummary(_ operation: GraphOperation) -> String {
        switch operation {
        case .convolution(let conv):
            let kind = conv.isDepthwise ? "dwconv" : conv.groups > 1 ? "gconv(g\(conv.groups))" : "conv"
            return "\(kind) \(conv.kernelSize)x\(conv.kernelSize)/\(conv.stride)\(conv.relu ? "+relu" : "")"
        case .maxPool(let kernel, let stride, _): return "maxpool \(kernel)x\(kernel)/\(stride)"
        case .averagePool(let kernel, let stride, _): return "avgpool \(kernel)x\(kernel)/\(stride)"
        case .upsampleNearest(let scale): return "upsample x\(scale)"
        case .concatenate: return "concat"
        case .add(let relu): return relu ? "add+relu" : "add"
        case .channelSlice(let start, let count): return "slice \(start)..<\(start + count)"
        case .channelShuffle(let groups): return "shuffle g\(groups)"
        case .detectionOutput: return "sigmoid|box|softmax"
        }
    }
}

import Foundation
import Hardware
import Testing
import Vision
@testable import LatencyBackends

struct VelaLatencyBackendTests {
    /// Vela 5.2's summary of the baseline's INT8 TFLite model on ethos-u65-256 (columns cut to
    /// those read) and the operator lines of its output.
    @Test func theReportIsReadFromVelasSummaryAndOutput() throws {
        let csv = """
            experiment,network,accelerator_configuration,inference_time,sram_memory_used,dram_memory_used,cycles_total
            default,model-int8,Ethos_U65_256,0.002316906,326.65625,1775.375,2316906
            """
        let output = "Total SRAM used                                326.66 KiB\nCPU operators = 7 (5.4%)\nNPU operators = 122 (94.6%)\n"
        let report = try VelaReport(summaryCSV: csv, standardOutput: output, accelerator: "ethos-u65-256", floatOperators: 6)
        #expect(report == VelaReport(accelerator: "ethos-u65-256", inferenceMilliseconds: 2.316906, cycles: 2_316_906,
                                     mapping: NPUMapping(npuOperators: 122, cpuOperators: 7, floatOperators: 6, sramKiB: 326.65625),
                                     dramKiB: 1775.375))
        // One CPU operator beyond the float ones: an integer operator the NPU lacks.
        #expect(report.mapping.fallbackOperators == 1)
        #expect(throws: VelaError.unreadableReport(command: "vela", detail: "no 'CPU operators = N' line in its output")) {
            try VelaReport(summaryCSV: csv, standardOutput: "NPU operators = 122 (94.6%)", accelerator: "ethos-u65-256", floatOperators: 7)
        }
    }

    /// Vela 5.2's per-layer CSV (`--verbose-performance`), columns cut to a few.
    @Test func thePerLayerEstimateIsReadByColumnName() throws {
        let csv = """
            Original Operator,NNG Operator,Target,Op Cycles,Network% (cycles),Name
            Quantize,Passthrough,CPU,0,0.0,image.quantized
            Conv2D,Conv2D,NPU,387098,26.69,stem.maxpool.padded
            DepthwiseConv2D,DepthwiseConv2D,NPU,11992,0.83,stage2.unit0.branch1.dw
            """
        #expect(try VelaReport.layers(perLayerCSV: csv) == [
            VelaLayer(name: "image.quantized", operation: "Quantize", target: "CPU", cycles: 0),
            VelaLayer(name: "stem.maxpool.padded", operation: "Conv2D", target: "NPU", cycles: 387_098),
            VelaLayer(name: "stage2.unit0.branch1.dw", operation: "DepthwiseConv2D", target: "NPU", cycles: 11992),
        ])
        #expect(throws: VelaError.unreadableReport(command: "vela", detail: "line 2 of the per-layer CSV has no cycle count")) {
            try VelaReport.layers(perLayerCSV: "Original Operator,Target,Op Cycles,Name\nConv2D,NPU,many,stem.conv")
        }
        #expect(throws: VelaError.self) { try VelaReport.layers(perLayerCSV: "Target,Name\nNPU,stem.conv") }
    }

    @Test func aMissingVelaIsNamedWithItsFix() throws {
        let backend = VelaLatencyBackend(accelerator: "ethos-u65-256", executable: "/nonexistent/vela")
        let error = #expect(throws: VelaError.self) { try backend.measure(architecture: try DetectorArchitecture(shortName: "k3-g8-c24-w224")) }
        #expect(error?.description.contains("pip install ethos-u-vela") == true)
    }

    /// The real compiler (the check scripts' environment has it): every operator of EdgeNAS's
    /// INT8 model but the float head and the input's quantization runs on the NPU.
    @Test(.enabled(if: velaExecutable != nil, "needs Vela: EDGENAS_PYTHON's environment (scripts/test.sh) or EDGENAS_VELA"))
    func velaCompilesAHeadSpaceMemberAndLeavesOnlyTheFloatHeadOnTheCPU() throws {
        let backend = VelaLatencyBackend(accelerator: "ethos-u65-256", executable: velaExecutable)
        let small = try backend.compile(try DetectorArchitecture(shortName: "k3-g8-c24-w224"))
        let large = try backend.compile(try DetectorArchitecture(shortName: "k5-g1-c96-w320"))
        // Input QUANTIZE; DEQUANTIZE of the three branches, LOGISTIC, SOFTMAX, CONCATENATION.
        #expect(small.mapping.cpuOperators == 7 && large.mapping.cpuOperators == 7)
        #expect(small.mapping.floatOperators == 7 && small.mapping.fallbackOperators == 0 && large.mapping.fallbackOperators == 0)
        #expect(small.mapping.npuOperators > 100 && small.mapping.sramKiB > 0)
        #expect(small.inferenceMilliseconds > 0 && small.inferenceMilliseconds < large.inferenceMilliseconds)
        let measured = try backend.measure(architecture: try DetectorArchitecture(shortName: "k3-g8-c24-w224"))
        #expect(measured.median == small.inferenceMilliseconds && measured.backend == "vela-ethos-u65-256")
        #expect(measured.npu == small.mapping)
    }

    /// `edgenas profile --latency 'vela ...'`: Vela's cycles attributed to the graph's layers add
    /// up to its whole-network estimate, and the blocks show where the NPU's time goes.
    @Test(.enabled(if: velaExecutable != nil, "needs Vela: EDGENAS_PYTHON's environment (scripts/test.sh) or EDGENAS_VELA"))
    func velasPerLayerEstimateIsALayerProfile() throws {
        let architecture = try DetectorArchitecture(shortName: "k3-g8-c24-w224")
        let backend = VelaLatencyBackend(accelerator: "ethos-u65-256", executable: velaExecutable)
        let profile = try backend.profile(architecture)
        #expect(profile.backend == "vela-ethos-u65-256" && profile.precision == "int8")
        #expect(profile.endToEnd.median == (try backend.compile(architecture).inferenceMilliseconds))
        #expect(abs(profile.layerSumMilliseconds - profile.endToEnd.median) < 1e-9 && profile.layersAddUp)
        #expect(profile.layers.map(\.name) == [LayerProfile.inputQuantizationName] + (try DetectorGraph(architecture)).nodes.map(\.name))
        // The backbone works on the NPU; the input quantization and the float head are the CPU's.
        let blocks = Dictionary(uniqueKeysWithValues: profile.blocks.map { ($0.block, $0.medianMilliseconds) })
        #expect([NetworkBlock.stem, .stage2, .stage3, .stage4].allSatisfy { blocks[$0]! > 0 })
        #expect(profile.layers.first?.medianMilliseconds == 0 && profile.layers.last?.medianMilliseconds == 0)
        // The stem's convolution, which Vela names after the max pool's padding it writes into, is the stem's largest layer.
        let stem = profile.layers.filter { $0.block == .stem }.max { $0.medianMilliseconds < $1.medianMilliseconds }
        #expect(stem?.name == "stem.conv", "\(profile.layers.filter { $0.block == .stem }.map { ($0.name, $0.medianMilliseconds) })")
    }
}

/// Vela named by EDGENAS_VELA, or the one beside the check scripts' Python.
let velaExecutable: String? = {
    let environment = ProcessInfo.processInfo.environment
    if let vela = environment[VelaLatencyBackend.executableVariable], !vela.isEmpty { return vela }
    guard let python = environment["EDGENAS_PYTHON"] else { return nil }
    let vela = URL(fileURLWithPath: python).deletingLastPathComponent().appendingPathComponent("vela").path
    return FileManager.default.isExecutableFile(atPath: vela) ? vela : nil
}()

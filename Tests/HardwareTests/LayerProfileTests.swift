import Foundation
import Testing
import Torch
import Vision
@testable import Hardware

struct LayerProfileAssemblyTests {
    @Test func sharesBlocksAndFiguresFollowFromTheLayerTimes() throws {
        let graph = try DetectorGraph(tinyArchitecture)
        // Layer i has samples m/2, m, 2m with median m = (i + 1) * 0.01 ms; the end-to-end
        // samples have median 10 % above the sum of the medians.
        let medians = graph.nodes.indices.map { Double($0 + 1) * 0.01 }
        let sum = medians.reduce(0, +)
        let profile = try LayerProfiler.assemble(
            graph: graph, precision: .int8, backend: "test", threads: 1, endToEnd: [sum * 1.1, sum * 1.2, sum], layerSamples: medians.map { [$0, 2 * $0, $0 / 2] },
            tolerance: 0.15)
        #expect(abs(profile.layerSumMilliseconds - sum) < 1e-12)
        #expect(abs(profile.relativeGap - (sum - sum * 1.1) / (sum * 1.1)) < 1e-12 && profile.layersAddUp)
        #expect(abs(profile.layers.reduce(0) { $0 + $1.share } - 1) < 1e-12)
        #expect(abs(profile.blocks.reduce(0) { $0 + $1.medianMilliseconds } - sum) < 1e-12)
        #expect(profile.blocks.reduce(0) { $0 + $1.parameters } == graph.parameterCount)
        #expect(profile.blocks.reduce(0) { $0 + $1.multiplyAccumulates } == graph.multiplyAccumulates)
        let stem = try #require(profile.layers.first)
        #expect(stem.name == "stem.conv" && stem.floatingPointOperations == 2 * stem.multiplyAccumulates)
        #expect(stem.activationBytes == graph.nodes[0].outputShape.elementCount)  // INT8: one byte per element
        #expect(profile.layers.last!.activationBytes == 4 * graph.output.outputShape.elementCount)  // float output
        #expect(profile.rankedLayers.first!.name == graph.output.name)  // the last layer is the slowest here
        #expect(profile.blocks.first { $0.block == .head }!.controllingFields.contains("headKernelSize"))
        // Minimums: half the medians each, against the end-to-end minimum (the sum itself).
        #expect(abs(profile.layerMinimumSumMilliseconds - sum / 2) < 1e-12 && abs(profile.minimumRelativeGap + 0.5) < 1e-12)

        // Twice the end-to-end time: outside a 15 % tolerance.
        let off = try LayerProfiler.assemble(graph: graph, precision: .fp32, backend: "test", threads: 1, endToEnd: [2 * sum],
                                             layerSamples: medians.map { [$0, 2 * $0, $0 / 2] }, tolerance: 0.15)
        #expect(!off.layersAddUp && abs(off.relativeGap + 0.5) < 1e-12)
    }
}

/// Timing tests: one at a time, and apart from the other suites' measurements by the machine
/// lock; skipped on an overloaded machine, where preemption rather than the code decides times.
@Suite(.serialized, .enabled(if: MachineLoad.isQuiet, "the machine's load is above its core count"))
struct MeasuredProfileTests {
    /// A mid-sized member of the space (the smallest head on the full backbone): large enough
    /// that kernel time dominates the per-node overhead of a debug build.
    let architecture = try! DetectorArchitecture(shortName: "k3-g8-c24-w224")

    @Test(arguments: LayerProfiler.Precision.allCases)
    func layerTimesAddUpToTheEndToEndTime(precision: LayerProfiler.Precision) throws {
        let profiler = LayerProfiler(
            layerPolicy: MeasurementPolicy(warmupRuns: 2, minimumRuns: 9, maximumRuns: 60, maximumSeconds: 0.3, stabilityWindow: 5,
                                           stabilityTolerance: 0.03),
            endToEndPolicy: MeasurementPolicy(warmupRuns: 3, minimumRuns: 15, maximumRuns: 100, maximumSeconds: 3, stabilityWindow: 5,
                                              stabilityTolerance: 0.02))
        let profile = try profiler.profile(architecture, precision: precision)
        let extra = precision == .int8 ? 1 : 0  // the image quantization
        #expect(profile.layers.count == (try DetectorGraph(architecture)).nodes.count + extra)
        #expect(profile.layers.allSatisfy { $0.medianMilliseconds > 0 })
        #expect(profile.layersAddUp, """
            \(precision): layer sum \(profile.layerSumMilliseconds) ms vs end-to-end \(profile.endToEnd.median) ms, \
            gap \(profile.relativeGap), tolerance \(profile.tolerance)
            """)
    }
}

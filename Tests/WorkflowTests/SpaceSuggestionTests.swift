import DetectionData
import Foundation
import Hardware
import Randomness
import Search
import Testing
import Torch
import Vision
@testable import Workflow

struct SpaceSuggestionTests {
    /// Shares of a profile where the backbone dominates (as measured on this machine class:
    /// 72-82 % in the stages) and one where the head does (the reference tool's board).
    static let backboneBound: [(block: NetworkBlock, share: Double)] = [
        (.stem, 0.08), (.stage2, 0.22), (.stage3, 0.30), (.stage4, 0.20), (.neck, 0.05), (.spp, 0.05), (.head, 0.10),
    ]
    static let headBound: [(block: NetworkBlock, share: Double)] = [
        (.stem, 0.03), (.stage2, 0.05), (.stage3, 0.06), (.stage4, 0.04), (.neck, 0.02), (.spp, 0.05), (.head, 0.75),
    ]

    @Test func theBaselineIsAPointOfTheExtendedSpaceWithItsCounts() throws {
        let space = try ArchitectureSpace.extendedSpace()
        #expect(Set(space.names) == Set(ArchitectureSpace.Parameter.allCases.map(\.rawValue)).subtracting(["height"]))
        let parameters = ArchitectureSpace.parameters(of: .baseline, in: space)
        try space.validate(parameters)
        // Rebuilt from its parameters on another base, the baseline is the baseline.
        let rebuilt = try ArchitectureSpace.architecture(parameters, base: try DetectorArchitecture(shortName: "k3-g8-c24-w224-st24.48.96-r1.2.1"))
        #expect(rebuilt == .baseline)
        let graph = try DetectorGraph(rebuilt)
        #expect(graph.parameterCount == 236_748)
        #expect(try graph.multiplyAccumulates == DetectorGraph(.baseline).multiplyAccumulates)
        // The ranges of the issue: stage channels in multiples of 8 around 48/96/192, repeats 1..4, 2..8, 1..4.
        #expect(space["stage2_channels"]?.distribution == .int(low: 24, high: 64, step: 8))
        #expect(space["stage3_channels"]?.distribution == .int(low: 48, high: 128, step: 8))
        #expect(space["stage4_channels"]?.distribution == .int(low: 96, high: 256, step: 8))
        #expect(space["stage2_repeats"]?.distribution == .int(low: 1, high: 4, step: 1))
        #expect(space["stage3_repeats"]?.distribution == .int(low: 2, high: 8, step: 1))
        #expect(space["stage4_repeats"]?.distribution == .int(low: 1, high: 4, step: 1))
        #expect(space["spp"]?.distribution == .int(low: 1, high: 3, step: 1))
        #expect(space["channels"]?.distribution == .int(low: 24, high: 96, step: 8))
        #expect(space["width"]?.distribution == .int(low: 224, high: 320, step: 32))
    }

    @Test func aHeadBoundProfileOpensTheHead() throws {
        let suggestion = try SpaceSuggestion.suggest(shares: Self.headBound, base: .baseline)
        #expect(suggestion.blocks.filter(\.opened).map(\.block) == [.head, .stage3])
        #expect(Set(suggestion.space.names) == ["width", "kernel", "groups", "channels", "stage3_channels", "stage3_repeats"])
        #expect(suggestion.smallest.headKernelSize == 3 && suggestion.smallest.headGroups == 8 && suggestion.smallest.headChannels == 24)
        #expect(suggestion.smallest.stageChannels == [48, 48, 192] && suggestion.smallest.inputWidthPixels == 224)
        // A lower threshold opens the head alone.
        let headOnly = try SpaceSuggestion.suggest(shares: Self.headBound, base: .baseline, threshold: 0.7)
        #expect(Set(headOnly.space.names) == ["width", "kernel", "groups", "channels"])
    }

    @Test func aBackboneBoundProfileOpensTheBackbone() throws {
        let suggestion = try SpaceSuggestion.suggest(shares: Self.backboneBound, base: .baseline)
        #expect(suggestion.blocks.filter(\.opened).map(\.block) == [.stage3, .stage2, .stage4, .head])
        #expect(suggestion.blocks.first { $0.block == .stem }?.opened == false)
        #expect(suggestion.smallest.stageChannels == [24, 48, 96] && suggestion.smallest.stageRepeats == [1, 2, 1])
        #expect(suggestion.smallest.stemChannels == DetectorArchitecture.baseline.stemChannels)
        let base = ArchitectureSpace.parameters(of: .baseline, in: suggestion.space)
        try suggestion.space.validate(base)
        #expect(throws: ArchitectureSpaceError.invalidThreshold(1.5)) { try SpaceSuggestion.suggest(shares: Self.backboneBound, base: .baseline, threshold: 1.5) }
    }

    @Test func theSuggestedSpaceIsAcceptedByAProjectConfig() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-space-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let suggestion = try SpaceSuggestion.suggest(shares: Self.backboneBound, base: .baseline)
        try suggestion.yamlDocument(source: "test profile", notes: ["a note"])
            .write(to: directory.appendingPathComponent("space.yaml"), atomically: true, encoding: .utf8)
        let config = try ProjectConfig.parse(yaml: "dataset: {path: data}\nbudget: {trials: 10}\nsearch_space: space.yaml\n", baseDirectory: directory)
        #expect(Set(config.searchSpace.names) == Set(suggestion.space.names))
    }

    /// The corners of the extended space (every choice at its cheapest and at its largest), the
    /// baseline and seeded random members: each builds, takes one training step and runs in INT8.
    @Test func membersOfTheExtendedSpaceBuildTrainAndQuantize() throws {
        let space = try ArchitectureSpace.extendedSpace()
        let cheapest = try ArchitectureSpace.cheapestMember(of: space, base: .baseline)
        var largest = DetectorArchitecture.baseline
        for name in space.names {
            let parameter = try #require(ArchitectureSpace.Parameter(rawValue: name))
            let largestValue: Int = switch space[name]!.distribution {
            case .int(_, let high, _, _): high
            case .categorical(let options): parameter == .groups ? 1 : options.compactMap { $0.numericValue.map { Int($0) } }.max()!
            case .float(_, let high, _, _): Int(high)
            }
            parameter.set(largestValue, in: &largest)
        }
        var members = [cheapest, largest, .baseline]
        var generator = SplitMix64(seed: 11)
        for _ in 0..<3 {
            members.append(try ArchitectureSpace.architecture(space.sampleUniform(using: &generator), base: .baseline))
        }
        let engine = try #require(QuantizedDetector.defaultEngine)
        for architecture in members {
            Torch.manualSeed(1)
            let detector = try Detector(architecture)
            let side = architecture.inputWidth
            let image = try Tensor.uniform([2, 3, side, side], generator: Generator(seed: 2))
            let optimizer = try SGD(parameters: detector.parameters(), learningRate: 0.01)
            let person = ObjectAnnotation(box: BoundingBox(x0: 20, y0: 30, x1: 90, y1: 200), classIndex: 0)
            let (loss, terms) = try DetectionLoss()(detector.branches(image), targets: [[person], []])
            try loss.backward()
            try optimizer.step()
            #expect(terms.total.isFinite, "\(architecture): loss \(terms.total)")
            detector.eval()
            let parameters = try QuantizationCalibrator.calibrate(detector, images: [image.narrow(dim: 0, start: 0, length: 1)])
            let output = try Torch.withNoGrad { try QuantizedDetector(detector, parameters: parameters, engine: engine)(image) }
            #expect(output.shape == [2, architecture.outputChannels, architecture.gridWidth, architecture.gridWidth], "\(architecture)")
        }
    }
}

/// A supernet of the head space trains its smallest member and uniform draws at the space's widths.
@Test func theHeadSpacesSupernetTrainsItsSmallestMemberAndDrawsFromTheSpace() throws {
    let sampling = try ArchitectureSpace.subnetworkSampling(ArchitectureSpace.defaultSpace, base: .baseline)
    #expect(sampling.smallest.description == "k3-g8-c24-w224")
    #expect(sampling.inputWidths == [224, 256, 288, 320])
    var generator = SplitMix64(seed: 4)
    let draws = (0..<200).map { _ in sampling.draw(&generator) }
    let members = Set(try DetectorHeadSpace.seed.allArchitectures())
    #expect(draws.allSatisfy(members.contains))
    #expect(Set(draws.map(\.headGroups)) == [1, 2, 4, 8] && Set(draws.map(\.headKernelSize)) == [3, 5])
    // A space over the backbone: the smallest member narrows and shortens it.
    let backbone = try SearchSpace(["stage3_channels": .categorical([.int(96), .int(192)]), "stage3_repeats": .int(low: 2, high: 8, step: 2)])
    let small = try ArchitectureSpace.subnetworkSampling(backbone, base: .baseline).smallest
    #expect(small.stageChannels[1] == 96 && small.stageRepeats[1] == 2 && small.inputWidthPixels == 320)
    // With the height searched, the smallest member takes the smallest width and the smallest height.
    let landscape = try SearchSpace(ArchitectureSpace.defaultSpace.parameters + [SearchParameter("height", .int(low: 160, high: 320, step: 32))])
    #expect(try ArchitectureSpace.subnetworkSampling(landscape, base: .baseline).smallest.description == "k3-g8-c24-w224-h160")
}

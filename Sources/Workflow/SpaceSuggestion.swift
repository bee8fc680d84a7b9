import Foundation
import Hardware
import Search
import Vision
import Yams

/// A search space designed from a layer profile: the blocks that take most of the latency get
/// their choices opened, the cheap ones stay at the base model's values (`edgenas suggest-space`).
///
/// The reference tool searched only the detection head because the head was its board's
/// bottleneck. On another backend the backbone can dominate, and a head-only space then cannot
/// cut latency much; this picks the blocks by their measured share instead.
public struct SpaceSuggestion: Sendable {
    /// One block of the profile and what the suggestion does with it.
    public struct BlockChoice: Sendable {
        public var block: NetworkBlock
        public var share: Double
        /// Share of this block and every block ranked above it.
        public var cumulativeShare: Double
        public var opened: Bool
        /// The space parameters that vary this block (opened or not).
        public var parameters: [ArchitectureSpace.Parameter]
    }

    /// The profile's blocks ranked by decreasing share.
    public var blocks: [BlockChoice]
    public var space: SearchSpace
    public var base: DetectorArchitecture
    /// The cheapest member of `space`: every opened choice at its least costly value.
    public var smallest: DetectorArchitecture
    public var threshold: Double

    /// The suggestion for a profile's blocks and base model.
    public static func suggest(from profile: LayerProfile, threshold: Double = 0.8) throws -> SpaceSuggestion {
        try suggest(shares: profile.blocks.map { ($0.block, $0.share) }, base: profile.architectureFields, threshold: threshold)
    }

    /// Opens blocks in order of decreasing latency share until together they reach `threshold`
    /// of the latency (at least one block). The input width scales every block, so it is always
    /// opened.
    public static func suggest(shares: [(block: NetworkBlock, share: Double)], base: DetectorArchitecture,
                               threshold: Double = 0.8) throws -> SpaceSuggestion {
        guard threshold > 0, threshold <= 1 else {
            throw ArchitectureSpaceError.invalidThreshold(threshold)
        }
        var cumulative = 0.0
        var choices: [BlockChoice] = []
        for entry in shares.sorted(by: { $0.share > $1.share }) {
            let opened = choices.isEmpty || cumulative < threshold
            cumulative += entry.share
            choices.append(BlockChoice(block: entry.block, share: entry.share, cumulativeShare: cumulative, opened: opened,
                                       parameters: ArchitectureSpace.parameters(controlling: entry.block)))
        }
        let opened = [ArchitectureSpace.Parameter.width] + choices.filter(\.opened).flatMap(\.parameters)
        let space = try SearchSpace(opened.map { SearchParameter($0.rawValue, ArchitectureSpace.choices(for: $0, base: base)) })
        let smallest = try ArchitectureSpace.cheapestMember(of: space, base: base)
        return SpaceSuggestion(blocks: choices, space: space, base: base, smallest: smallest, threshold: threshold)
    }

    /// The space as a SearchSpace YAML document (what a project config's `search_space: FILE`
    /// reads), headed by comments that say where it came from and why each block is open or
    /// kept. `notes` are further comment lines (e.g. the measured best-case reduction).
    public func yamlDocument(source: String, notes: [String] = []) throws -> String {
        var lines = ["# Search space suggested by 'edgenas suggest-space' from \(source), threshold \(Int((threshold * 100).rounded())) %.",
                     "# Blocks by share of the latency; opened ones are searched, the others keep the base model's values:"]
        lines += blocks.map { block in
            "#   " + block.block.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0) + String(format: "%5.1f %%  ", block.share * 100)
                + (block.opened ? "opened: " : "kept: ") + block.parameters.map(\.rawValue).joined(separator: ", ")
        }
        lines.append("# The input width scales every block and is always searched. Cheapest member: \(smallest).")
        lines += notes.map { "# " + $0 }
        return lines.joined(separator: "\n") + "\n" + (try YAMLEncoder().encode(space))
    }
}

extension ArchitectureSpace {
    /// The parameters that vary one block's own layers. Width is left out: it scales every
    /// block and is opened for all suggestions.
    public static func parameters(controlling block: NetworkBlock) -> [Parameter] {
        switch block {
        case .stem: [.stem]
        case .stage2: [.stage2Channels, .stage2Repeats]
        case .stage3: [.stage3Channels, .stage3Repeats]
        case .stage4: [.stage4Channels, .stage4Repeats]
        case .neck: [.neck]
        case .spp: [.spp]
        case .head: [.kernel, .groups, .channels]
        }
    }

    /// The choices of one parameter around the base model, keeping the network a valid
    /// FastestDet / ShuffleNetV2 member and the base a point of the space:
    /// - head kernel {3, 5}, head groups {1, 2, 4, 8};
    /// - channel counts (stem, stages, neck) from about half to 4/3 of the base and head
    ///   channels from a quarter to the base, in steps of 8 on the base's own grid (so the base
    ///   is a choice, channel splits stay even and every head group count divides the neck);
    /// - repeats from a quarter of the base (at least 1) to the base;
    /// - SPP branches 1...3; input width from 70 % of the base to the base on the 32-pixel stride.
    public static func choices(for parameter: Parameter, base: DetectorArchitecture) -> Distribution {
        let value = parameter.value(in: base)
        // Integer arithmetic, so e.g. 4/3 of 48 is exactly 64. The grid starts on the base's
        // residue modulo the step, so the base is one of its points.
        func channelGrid(shrinkTo low: (Int, Int), growTo high: (Int, Int), step: Int = 8) -> Distribution {
            let down = value * (low.1 - low.0) / low.1 / step * step
            let up = value * (high.0 - high.1) / high.1 / step * step
            return .int(low: max(step, value - down), high: value + up, step: step)
        }
        switch parameter {
        case .kernel: return .categorical([.int(3), .int(5)])
        case .groups: return .categorical([.int(1), .int(2), .int(4), .int(8)])
        case .channels: return channelGrid(shrinkTo: (1, 4), growTo: (1, 1))
        case .stem, .stage2Channels, .stage3Channels, .stage4Channels, .neck: return channelGrid(shrinkTo: (1, 2), growTo: (4, 3))
        case .stage2Repeats, .stage3Repeats, .stage4Repeats: return .int(low: max(1, value / 4), high: value, step: 1)
        case .spp: return .int(low: 1, high: 3, step: 1)
        case .width, .height:
            let stride = DetectorArchitecture.backboneStride
            return .int(low: value - value * 3 / 10 / stride * stride, high: value, step: stride)
        }
    }

    /// The member of `space` that costs least latency: `base` with every parameter of the space
    /// at its cheapest value, the smallest number except for the head groups (most groups is
    /// cheapest). Validated.
    public static func cheapestMember(of space: SearchSpace, base: DetectorArchitecture) throws -> DetectorArchitecture {
        var cheapest = base
        for entry in space.parameters {
            guard let parameter = Parameter(rawValue: entry.name) else { throw ArchitectureSpaceError.unknownParameter(entry.name) }
            switch entry.distribution {
            case .categorical(let options):
                let numbers = options.compactMap { $0.numericValue.map { Int($0) } }
                parameter.set(parameter == .groups ? numbers.max()! : numbers.min()!, in: &cheapest)
            case .int(let low, _, _, _): parameter.set(low, in: &cheapest)
            case .float(let low, _, _, _): parameter.set(Int(low), in: &cheapest)
            }
        }
        try cheapest.validate()
        return cheapest
    }

    /// Every choice of every block opened around `base`: the extended space of the family.
    public static func extendedSpace(around base: DetectorArchitecture = .baseline) throws -> SearchSpace {
        // Not the height: a searched width keeps the base's aspect ratio, which is the camera's.
        try SearchSpace(Parameter.allCases.filter { $0 != .height }.map { SearchParameter($0.rawValue, choices(for: $0, base: base)) })
    }
}

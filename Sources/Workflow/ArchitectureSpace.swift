import Search
import Vision

/// How search-space parameters map onto a detector architecture: a trial's parameters replace
/// the named fields of the base model, everything else stays as in the base model.
public enum ArchitectureSpace {
    /// The architecture fields a search space may name.
    public enum Parameter: String, CaseIterable, Sendable {
        case kernel        // headKernelSize
        case groups        // headGroups
        case channels      // headChannels
        case width         // inputWidthPixels
        case neck          // neckChannels
        case stem          // stemChannels
        case spp           // sppBranches
        case stage2Channels = "stage2_channels"  // stageChannels[0]
        case stage3Channels = "stage3_channels"  // stageChannels[1]
        case stage4Channels = "stage4_channels"  // stageChannels[2]
        case stage2Repeats = "stage2_repeats"    // stageRepeats[0]
        case stage3Repeats = "stage3_repeats"    // stageRepeats[1]
        case stage4Repeats = "stage4_repeats"    // stageRepeats[2]

        /// The field's value in `architecture`.
        public func value(in architecture: DetectorArchitecture) -> Int {
            switch self {
            case .kernel: architecture.headKernelSize
            case .groups: architecture.headGroups
            case .channels: architecture.headChannels
            case .width: architecture.inputWidthPixels
            case .neck: architecture.neckChannels
            case .stem: architecture.stemChannels
            case .spp: architecture.sppBranches
            case .stage2Channels: architecture.stageChannels[0]
            case .stage3Channels: architecture.stageChannels[1]
            case .stage4Channels: architecture.stageChannels[2]
            case .stage2Repeats: architecture.stageRepeats[0]
            case .stage3Repeats: architecture.stageRepeats[1]
            case .stage4Repeats: architecture.stageRepeats[2]
            }
        }

        /// `architecture` with this field set to `value`.
        public func set(_ value: Int, in architecture: inout DetectorArchitecture) {
            switch self {
            case .kernel: architecture.headKernelSize = value
            case .groups: architecture.headGroups = value
            case .channels: architecture.headChannels = value
            case .width: architecture.inputWidthPixels = value
            case .neck: architecture.neckChannels = value
            case .stem: architecture.stemChannels = value
            case .spp: architecture.sppBranches = value
            case .stage2Channels: architecture.stageChannels[0] = value
            case .stage3Channels: architecture.stageChannels[1] = value
            case .stage4Channels: architecture.stageChannels[2] = value
            case .stage2Repeats: architecture.stageRepeats[0] = value
            case .stage3Repeats: architecture.stageRepeats[1] = value
            case .stage4Repeats: architecture.stageRepeats[2] = value
            }
        }
    }

    /// The head space of the seed: kernel {3, 5}, groups {1, 2, 4, 8}, channels 24..96 and
    /// input width 220..320. Channels go in steps of 8 so every count is divisible by every
    /// group count. The width is searched on the network's 32-pixel stride (224..320): the
    /// network rounds any width to it, so finer steps would only repeat networks.
    public static let defaultSpace: SearchSpace = try! SearchSpace([
        "kernel": .categorical([.int(3), .int(5)]),
        "groups": .categorical([.int(1), .int(2), .int(4), .int(8)]),
        "channels": .int(low: 24, high: 96, step: 8),
        "width": .int(low: 224, high: 320, step: 32),
    ])

    /// The architecture a trial's parameters describe (validated).
    public static func architecture(
        _ parameters: [String: ParameterValue], base: DetectorArchitecture
    ) throws -> DetectorArchitecture {
        var result = base
        for (name, value) in parameters {
            guard let parameter = Parameter(rawValue: name) else { throw ArchitectureSpaceError.unknownParameter(name) }
            guard let number = value.numericValue, number == number.rounded() else {
                throw ArchitectureSpaceError.notAnInteger(parameter: name, value: value)
            }
            parameter.set(Int(number), in: &result)
        }
        try result.validate()
        return result
    }

    /// The parameters of `space` read off an architecture (the baseline's trial).
    public static func parameters(of architecture: DetectorArchitecture, in space: SearchSpace) -> [String: ParameterValue] {
        var result: [String: ParameterValue] = [:]
        for name in space.names {
            guard let parameter = Parameter(rawValue: name) else { continue }
            let value = parameter.value(in: architecture)
            // A float parameter holds the value as a double, as the sampler would.
            if case .float = space[name]?.distribution { result[name] = .double(Double(value)) } else { result[name] = .int(value) }
        }
        return result
    }
}

public enum ArchitectureSpaceError: Error, Equatable, CustomStringConvertible {
    case unknownParameter(String)
    case notAnInteger(parameter: String, value: ParameterValue)
    case invalidThreshold(Double)

    public var description: String {
        switch self {
        case .unknownParameter(let name):
            "search-space parameter '\(name)' is not an architecture field; expected one of "
                + ArchitectureSpace.Parameter.allCases.map(\.rawValue).joined(separator: ", ")
        case .notAnInteger(let name, let value): "parameter '\(name)' = \(value); expected a whole number"
        case .invalidThreshold(let value): "latency share threshold \(value); expected a fraction in (0, 1], e.g. 0.8"
        }
    }
}

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
        case width         // inputWidthPixels, the height scaled with it (`atInputWidth`)
        case height        // inputHeightPixels, when searched on its own
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
            case .height: architecture.inputHeightPixels ?? architecture.inputWidthPixels
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
            case .width: architecture = architecture.atInputWidth(value)
            case .height: architecture.inputHeightPixels = value == architecture.inputWidthPixels ? nil : value
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

    /// The seed's head space (`DetectorHeadSpace.seed`) as a search space: kernel and groups
    /// categorical, channels and width integer ranges on their steps (8 and the network's
    /// 32-pixel stride), so ordinal samplers see their order.
    public static let defaultSpace: SearchSpace = {
        let seed = DetectorHeadSpace.seed
        return try! SearchSpace([
            "kernel": .categorical(seed.kernelSizes.map { .int($0) }),
            "groups": .categorical(seed.groups.map { .int($0) }),
            "channels": .int(low: seed.channels.first!, high: seed.channels.last!, step: seed.channels[1] - seed.channels[0]),
            "width": .int(low: seed.inputWidths.first!, high: seed.inputWidths.last!, step: seed.inputWidths[1] - seed.inputWidths[0]),
        ])
    }()

    /// The order in which parameters are set on an architecture: the height last, since a
    /// searched width scales the base's height and a searched height replaces it.
    static func settingOrder(_ names: some Sequence<String>) -> [String] {
        let height = Parameter.height.rawValue
        return names.filter { $0 != height } + names.filter { $0 == height }
    }

    /// The architecture a trial's parameters describe (validated).
    public static func architecture(
        _ parameters: [String: ParameterValue], base: DetectorArchitecture
    ) throws -> DetectorArchitecture {
        var result = base
        for name in settingOrder(parameters.keys) {
            let value = parameters[name]!
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

extension ArchitectureSpace {
    /// The members of `space` a supernet of `base` trains (`SubnetworkSampling`): uniform
    /// draws, the smallest member (every field at its smallest, groups at their largest), and the
    /// input widths the space searches (the base's alone when it searches none).
    public static func subnetworkSampling(_ space: SearchSpace, base: DetectorArchitecture, randomPerStep: Int = 2,
                                          labelWeight: Double = 1) throws -> SubnetworkSampling {
        var smallest = base
        var widths = [base.inputWidthPixels]
        for name in settingOrder(space.names) {
            guard let parameter = Parameter(rawValue: name) else { throw ArchitectureSpaceError.unknownParameter(name) }
            let values = try choices(of: name, in: space)
            parameter.set(parameter == .groups ? values.max()! : values.min()!, in: &smallest)
            if parameter == .width { widths = values }
        }
        try smallest.validate()
        return SubnetworkSampling(smallest: smallest, inputWidths: widths, randomPerStep: randomPerStep, labelWeight: labelWeight) { generator in
            // A draw the space allows but the network family does not (channels not divisible by
            // the groups in a user's space) is drawn again; a space with no buildable member
            // but the base trains the base.
            for _ in 0..<1_000 {
                if let member = try? architecture(space.sampleUniform(using: &generator), base: base) { return member }
            }
            return base
        }
    }

    /// The whole numbers a parameter of an architecture space can take.
    private static func choices(of name: String, in space: SearchSpace) throws -> [Int] {
        switch space[name]?.distribution {
        case .categorical(let values)?:
            return try values.map { value in
                guard let number = value.numericValue, number == number.rounded() else { throw ArchitectureSpaceError.notAnInteger(parameter: name, value: value) }
                return Int(number)
            }
        case .int(let low, let high, let step, _)?:
            return Array(stride(from: low, through: high, by: step))
        case .float(let low, let high, let step, _)?:
            let step = step ?? 1
            return Array(stride(from: low, through: high, by: step)).filter { $0 == $0.rounded() }.map { Int($0) }
        case nil:
            return []
        }
    }
}

// The head space's encoding for the model-based predictors.
import Estimation
import Vision

extension DetectorHeadSpace {
    /// Ordinal encoding of the four fields (each in [0, 1] over its listed choices), the input
    /// of the model-based predictors; log10 of parameters and multiply-accumulates are appended
    /// as derived features by the caller.
    public var encoding: ArchitectureEncoding {
        get throws {
            try ArchitectureEncoding(parameters: [
                .ordinal(name: "head_kernel", levels: kernelSizes.sorted().map { .integer($0) }),
                .ordinal(name: "head_groups", levels: groups.sorted().map { .integer($0) }),
                .ordinal(name: "head_channels", levels: channels.sorted().map { .integer($0) }),
                .ordinal(name: "input_width", levels: inputWidths.sorted().map { .integer($0) }),
            ])
        }
    }

    /// The encoding's configuration of one architecture.
    public static func configuration(_ a: DetectorArchitecture) -> [String: ArchitectureChoice] {
        ["head_kernel": .integer(a.headKernelSize), "head_groups": .integer(a.headGroups),
         "head_channels": .integer(a.headChannels), "input_width": .integer(a.inputWidthPixels)]
    }
}

import Torch

/// Mixes channels between the two halves of a ShuffleNetV2 unit: (N, C, H, W) is viewed as
/// (N, groups, C/groups, H, W), the two group axes are swapped, and the result flattened back,
/// so every following unit sees channels from both branches.
public func channelShuffle(_ input: Tensor, groups: Int) throws -> Tensor {
    let shape = input.shape
    guard shape.count == 4, groups > 0, shape[1] % groups == 0 else {
        throw TorchError(message: "channelShuffle: needs NCHW input with channels divisible by \(groups), got shape \(shape)")
    }
    let (batch, channels, height, width) = (shape[0], shape[1], shape[2], shape[3])
    return try input.view([batch, groups, channels / groups, height, width])
        .transpose(1, 2).contiguous()
        .view([batch, channels, height, width])
}

/// The ShuffleNetV2 building block (torchvision's InvertedResidual, same parameter names).
///
/// Stride 1: the input channels are split in half; one half passes through unchanged, the other
/// through 1×1 conv → BN → ReLU → 3×3 depthwise conv → BN → 1×1 conv → BN → ReLU (`branch2`).
/// Stride 2: both branches see the whole input; `branch1` is 3×3 depthwise conv (stride 2) → BN →
/// 1×1 conv → BN → ReLU and halves the resolution like `branch2`. The two halves are concatenated
/// and channel-shuffled.
public final class ShuffleNetV2Unit: Module {
    public let inputChannels: Int
    public let outputChannels: Int
    public let stride: Int
    /// Only for stride 2 (nil for stride 1, where the first half is an identity).
    public let branch1: Sequential?
    public let branch2: Sequential
    public var isTraining = true

    /// Weights are drawn from `generator` (nil: libtorch's default generator).
    public init(inputChannels: Int, outputChannels: Int, stride: Int, generator: Generator? = nil) throws {
        guard stride == 1 || stride == 2 else {
            throw TorchError(message: "ShuffleNetV2Unit: stride must be 1 or 2, got \(stride)")
        }
        guard outputChannels > 0, outputChannels % 2 == 0 else {
            throw TorchError(message: "ShuffleNetV2Unit: output channels must be even and positive, got \(outputChannels)")
        }
        guard stride == 2 || inputChannels == outputChannels else {
            throw TorchError(message: "ShuffleNetV2Unit: stride 1 needs equal input and output channels, got \(inputChannels) -> \(outputChannels)")
        }
        let branchChannels = outputChannels / 2
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.stride = stride
        if stride == 2 {
            branch1 = Sequential([
                try Conv2d(inChannels: inputChannels, outChannels: inputChannels, kernelSize: 3, stride: stride, padding: 1,
                           groups: inputChannels, bias: false, generator: generator),
                try BatchNorm2d(features: inputChannels),
                try Conv2d(inChannels: inputChannels, outChannels: branchChannels, kernelSize: 1, bias: false, generator: generator),
                try BatchNorm2d(features: branchChannels),
                ReLU(inPlace: true),
            ])
        } else {
            branch1 = nil
        }
        branch2 = Sequential([
            try Conv2d(inChannels: stride == 2 ? inputChannels : branchChannels, outChannels: branchChannels, kernelSize: 1, bias: false, generator: generator),
            try BatchNorm2d(features: branchChannels),
            ReLU(inPlace: true),
            try Conv2d(inChannels: branchChannels, outChannels: branchChannels, kernelSize: 3, stride: stride, padding: 1,
                       groups: branchChannels, bias: false, generator: generator),
            try BatchNorm2d(features: branchChannels),
            try Conv2d(inChannels: branchChannels, outChannels: branchChannels, kernelSize: 1, bias: false, generator: generator),
            try BatchNorm2d(features: branchChannels),
            ReLU(inPlace: true),
        ])
    }

    public var children: [(name: String, module: any Module)] {
        (branch1.map { [(name: "branch1", module: $0 as any Module)] } ?? []) + [(name: "branch2", module: branch2)]
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        if let branch1 {
            return try interleaveChannels(branch1(input), branch2(input))
        }
        let halves = try input.chunk(2, dim: 1)
        return try interleaveChannels(halves[0], branch2(halves[1]))
    }

    /// channelShuffle(cat([first, second], dim 1), groups 2) in one copy instead of two:
    /// output channel 2k is first[k] and 2k + 1 is second[k], which is exactly what stacking
    /// along a new axis after the channels and merging the two axes produces.
    private func interleaveChannels(_ first: Tensor, _ second: Tensor) throws -> Tensor {
        let shape = first.shape
        return try Tensor.stack([first, second], dim: 2).view([shape[0], 2 * shape[1], shape[2], shape[3]])
    }
}

/// Feature maps of a backbone at output strides 8, 16 and 32 (for a detector's neck/head).
public struct BackboneFeatures {
    public let stride8: Tensor
    public let stride16: Tensor
    public let stride32: Tensor
}

/// ShuffleNetV2 backbone without torchvision's final 1×1 conv and classifier: stem
/// (3×3 conv stride 2 → BN → ReLU → 3×3 max-pool stride 2), then three stages of units whose first
/// unit has stride 2. Parameter names match torchvision ("conv1.0.weight", "stage2.0.branch1.0.weight").
public final class ShuffleNetV2Backbone: Module {
    /// Units per stage (torchvision: [4, 8, 4]).
    public let stageRepeats: [Int]
    /// Output channels of the stem followed by each stage (0.5×: [24, 48, 96, 192]).
    public let channels: [Int]
    public let conv1: Sequential
    public let maxpool: MaxPool2d
    public let stages: [Sequential]
    public var isTraining = true

    /// The 0.5× width configuration of torchvision's shufflenet_v2_x0_5.
    public static let widthHalfChannels = [24, 48, 96, 192]
    public static let defaultStageRepeats = [4, 8, 4]

    /// Weights are drawn from `generator` (nil: libtorch's default generator).
    public init(
        stageRepeats: [Int] = defaultStageRepeats, channels: [Int] = widthHalfChannels, inputChannels: Int = 3,
        generator: Generator? = nil
    ) throws {
        guard stageRepeats.count == 3, channels.count == 4, stageRepeats.allSatisfy({ $0 >= 1 }) else {
            throw TorchError(message: "ShuffleNetV2Backbone: needs 3 stage repeats >= 1 and 4 channel counts, got \(stageRepeats), \(channels)")
        }
        self.stageRepeats = stageRepeats
        self.channels = channels
        conv1 = Sequential([
            try Conv2d(inChannels: inputChannels, outChannels: channels[0], kernelSize: 3, stride: 2, padding: 1, bias: false, generator: generator),
            try BatchNorm2d(features: channels[0]),
            ReLU(inPlace: true),
        ])
        maxpool = MaxPool2d(kernelSize: 3, stride: 2, padding: 1)
        var stages: [Sequential] = []
        var inputWidth = channels[0]
        for (repeats, width) in zip(stageRepeats, channels.dropFirst()) {
            var units: [any Module] = [try ShuffleNetV2Unit(inputChannels: inputWidth, outputChannels: width, stride: 2, generator: generator)]
            for _ in 1..<repeats {
                units.append(try ShuffleNetV2Unit(inputChannels: width, outputChannels: width, stride: 1, generator: generator))
            }
            stages.append(Sequential(units))
            inputWidth = width
        }
        self.stages = stages
    }

    public var children: [(name: String, module: any Module)] {
        [(name: "conv1", module: conv1), (name: "maxpool", module: maxpool)]
            + stages.enumerated().map { (name: "stage\($0.offset + 2)", module: $0.element as any Module) }
    }

    /// The stride-8, 16 and 32 feature maps of an NCHW image batch.
    public func features(_ input: Tensor) throws -> BackboneFeatures {
        let stem = try maxpool(conv1(input))
        let stride8 = try stages[0](stem)
        let stride16 = try stages[1](stride8)
        let stride32 = try stages[2](stride16)
        return BackboneFeatures(stride8: stride8, stride16: stride16, stride32: stride32)
    }

    /// The stride-32 feature map.
    public func forward(_ input: Tensor) throws -> Tensor { try features(input).stride32 }
}

import Foundation

/// A named tensor that belongs to a module: a trainable weight or a buffer (running statistics).
/// The tensor can be replaced (e.g. by loading) while the parameter object stays the same.
public final class Parameter {
    /// The local name inside its module, e.g. "weight", "running_mean".
    public let name: String
    public let tensor: Tensor

    public init(_ name: String, _ tensor: Tensor) {
        self.name = name
        self.tensor = tensor
    }
}

/// A building block of a network, composed like torch.nn.Module.
///
/// Fully qualified names follow PyTorch's state_dict naming ("stage2.0.branch2.3.weight"),
/// so weights exported from PyTorch load by name.
public protocol Module: AnyObject {
    /// Trainable tensors owned directly by this module (not its children).
    var ownParameters: [Parameter] { get }
    /// Non-trainable state owned directly by this module (e.g. batch-norm running statistics).
    var ownBuffers: [Parameter] { get }
    /// Direct sub-modules with their names.
    var children: [(name: String, module: any Module)] { get }
    /// Training mode (batch statistics) or evaluation mode (running statistics).
    var isTraining: Bool { get set }
    func forward(_ input: Tensor) throws -> Tensor
}

extension Module {
    public var ownParameters: [Parameter] { [] }
    public var ownBuffers: [Parameter] { [] }
    public var children: [(name: String, module: any Module)] { [] }

    public func callAsFunction(_ input: Tensor) throws -> Tensor { try forward(input) }

    /// All trainable tensors with dotted names, depth first in declaration order.
    public func namedParameters() -> [(name: String, tensor: Tensor)] {
        collect(prefix: "") { $0.ownParameters }
    }

    /// All buffers with dotted names.
    public func namedBuffers() -> [(name: String, tensor: Tensor)] {
        collect(prefix: "") { $0.ownBuffers }
    }

    /// Trainable tensors (for an optimizer).
    public func parameters() -> [Tensor] { namedParameters().map(\.tensor) }

    /// Parameters and buffers, like PyTorch's state_dict (order: per module, parameters then buffers).
    public func namedState() -> [(name: String, tensor: Tensor)] {
        collect(prefix: "") { $0.ownParameters + $0.ownBuffers }
    }

    private func collect(prefix: String, _ own: (any Module) -> [Parameter]) -> [(name: String, tensor: Tensor)] {
        var result = own(self).map { (name: prefix + $0.name, tensor: $0.tensor) }
        for child in children {
            result += child.module.collect(prefix: prefix + child.name + ".", own)
        }
        return result
    }

    /// Switches this module and all descendants to training (true) or evaluation (false) mode.
    public func train(_ training: Bool = true) {
        isTraining = training
        for child in children { child.module.train(training) }
    }

    public func eval() { train(false) }

    /// Zeroes the gradients of all parameters.
    public func zeroGrad() throws {
        for parameter in parameters() { try parameter.zeroGrad() }
    }

    /// Saves parameters and buffers to `url` in the TensorArchive format.
    public func save(to url: URL) throws {
        try TensorArchive(entries: namedState()).write(to: url)
    }

    /// Loads parameters and buffers saved by `save(to:)` (or exported under PyTorch's names).
    /// Every tensor of the module must be present with the same shape.
    public func load(from url: URL) throws {
        try load(TensorArchive(contentsOf: url))
    }

    /// Copies tensors from `archive` into this module by name.
    public func load(_ archive: TensorArchive) throws {
        let stored = Dictionary(archive.entries.map { ($0.name, $0.tensor) }, uniquingKeysWith: { first, _ in first })
        for (name, tensor) in namedState() {
            guard let source = stored[name] else { throw ModuleStateError.missingTensor(name: name) }
            guard source.shape == tensor.shape else {
                throw ModuleStateError.shapeMismatch(name: name, expected: tensor.shape, found: source.shape)
            }
            try tensor.assign(source)
        }
    }
}

/// Why module state could not be loaded.
public enum ModuleStateError: Error, Equatable, CustomStringConvertible {
    case missingTensor(name: String)
    case shapeMismatch(name: String, expected: [Int], found: [Int])

    public var description: String {
        switch self {
        case .missingTensor(let name): "module state: no tensor named '\(name)' in the archive"
        case let .shapeMismatch(name, expected, found): "module state: '\(name)' has shape \(found), expected \(expected)"
        }
    }
}

// MARK: layers

/// 2-D convolution layer (torch.nn.Conv2d); weights initialised like PyTorch's defaults
/// (kaiming-uniform with a = sqrt(5), bias uniform in ±1/sqrt(fan_in)) from `generator`
/// (nil: libtorch's default generator).
public final class Conv2d: Module {
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: (Int, Int)
    public let padding: (Int, Int)
    public let dilation: (Int, Int)
    public let groups: Int
    public var isTraining = true

    public init(
        inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
        dilation: Int = 1, groups: Int = 1, bias: Bool = true, generator: Generator? = nil
    ) throws {
        guard groups > 0, inChannels % groups == 0, outChannels % groups == 0 else {
            throw TorchError(message: "Conv2d: channels \(inChannels)->\(outChannels) not divisible by groups \(groups)")
        }
        let shape = [outChannels, inChannels / groups, kernelSize, kernelSize]
        weight = Parameter("weight", try Tensor.kaimingUniform(shape, generator: generator).requiresGrad(true))
        if bias {
            let bound = 1 / Double(shape.dropFirst().reduce(1, *)).squareRoot()
            self.bias = Parameter(
                "bias", try Tensor.uniform([outChannels], low: -bound, high: bound, generator: generator).requiresGrad(true))
        } else {
            self.bias = nil
        }
        self.stride = (stride, stride)
        self.padding = (padding, padding)
        self.dilation = (dilation, dilation)
        self.groups = groups
    }

    public var ownParameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }

    public func forward(_ input: Tensor) throws -> Tensor {
        try Functional.conv2d(input, weight: weight.tensor, bias: bias?.tensor, stride: stride, padding: padding,
                              dilation: dilation, groups: groups)
    }
}

/// Batch normalisation over NCHW channels (torch.nn.BatchNorm2d with affine weights and
/// running statistics; momentum 0.1, eps 1e-5 by default).
public final class BatchNorm2d: Module {
    public let weight: Parameter
    public let bias: Parameter
    public let runningMean: Parameter
    public let runningVar: Parameter
    /// Counted like PyTorch so state files carry the same entries.
    public let batchesTracked: Parameter
    /// Weight of a batch's statistics in the running ones (recalibration varies it per batch).
    public var momentum: Double
    public let eps: Double
    public var isTraining = true

    public init(features: Int, momentum: Double = 0.1, eps: Double = 1e-5) throws {
        weight = Parameter("weight", try Tensor.ones([features]).requiresGrad(true))
        bias = Parameter("bias", try Tensor.zeros([features]).requiresGrad(true))
        runningMean = Parameter("running_mean", try Tensor.zeros([features]))
        runningVar = Parameter("running_var", try Tensor.ones([features]))
        batchesTracked = Parameter("num_batches_tracked", try Tensor.zeros([], dtype: .int64))
        self.momentum = momentum
        self.eps = eps
    }

    public var ownParameters: [Parameter] { [weight, bias] }
    public var ownBuffers: [Parameter] { [runningMean, runningVar, batchesTracked] }

    public func forward(_ input: Tensor) throws -> Tensor {
        if isTraining {
            try batchesTracked.tensor.assign(batchesTracked.tensor + 1)
        }
        return try Functional.batchNorm(
            input, weight: weight.tensor, bias: bias.tensor, runningMean: runningMean.tensor,
            runningVar: runningVar.tensor, training: isTraining, momentum: momentum, eps: eps)
    }
}

/// Fully connected layer (torch.nn.Linear), PyTorch's default initialisation from `generator`
/// (nil: libtorch's default generator).
public final class Linear: Module {
    public let weight: Parameter
    public let bias: Parameter?
    public var isTraining = true

    public init(inFeatures: Int, outFeatures: Int, bias: Bool = true, generator: Generator? = nil) throws {
        weight = Parameter("weight", try Tensor.kaimingUniform([outFeatures, inFeatures], generator: generator).requiresGrad(true))
        if bias {
            let bound = 1 / Double(max(inFeatures, 1)).squareRoot()
            self.bias = Parameter(
                "bias", try Tensor.uniform([outFeatures], low: -bound, high: bound, generator: generator).requiresGrad(true))
        } else {
            self.bias = nil
        }
    }

    public var ownParameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }

    public func forward(_ input: Tensor) throws -> Tensor {
        try Functional.linear(input, weight: weight.tensor, bias: bias?.tensor)
    }
}

/// ReLU as a module (so it takes an index in a Sequential, as in PyTorch). `inPlace` overwrites
/// its input like torch.nn.ReLU(inplace=True), saving one activation-sized allocation.
public final class ReLU: Module {
    public let inPlace: Bool
    public var isTraining = true
    public init(inPlace: Bool = false) { self.inPlace = inPlace }
    public func forward(_ input: Tensor) throws -> Tensor { inPlace ? try input.reluInPlace() : try input.relu() }
}

/// Max pooling as a module.
public final class MaxPool2d: Module {
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    public var isTraining = true

    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        try Functional.maxPool2d(input, kernel: (kernelSize, kernelSize), stride: (stride, stride), padding: (padding, padding))
    }
}

/// Modules applied one after another; children are named "0", "1", ... like torch.nn.Sequential.
public final class Sequential: Module {
    public let layers: [any Module]
    public var isTraining = true

    public init(_ layers: [any Module]) { self.layers = layers }

    public var children: [(name: String, module: any Module)] {
        layers.enumerated().map { (name: String($0.offset), module: $0.element) }
    }

    public func forward(_ input: Tensor) throws -> Tensor {
        var output = input
        for layer in layers { output = try layer.forward(output) }
        return output
    }
}

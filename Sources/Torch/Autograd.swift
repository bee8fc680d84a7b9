import CTorch

extension Tensor {
    /// Whether autograd tracks operations on this tensor.
    public var requiresGrad: Bool { ctorch_requires_grad(handle) }

    /// Turns gradient tracking on or off for this leaf tensor; returns `self` for chaining.
    @discardableResult
    public func requiresGrad(_ flag: Bool) throws -> Tensor {
        try TorchError.check(ctorch_set_requires_grad(handle, flag))
        return self
    }

    /// Back-propagates from this tensor. `gradient` is required unless the tensor has one element.
    public func backward(gradient: Tensor? = nil, retainGraph: Bool = false) throws {
        try TorchError.check(ctorch_backward(handle, gradient?.handle, retainGraph))
    }

    /// The gradient accumulated by `backward`, or nil before any.
    public var grad: Tensor? {
        var result: ctorch_tensor?
        guard ctorch_grad(handle, &result) == 0, let result else { return nil }
        return Tensor(owning: result)
    }

    /// Sets the accumulated gradient to zero (keeps its memory, like PyTorch 1.13's default).
    public func zeroGrad() throws { try TorchError.check(ctorch_zero_grad(handle)) }

    /// The same values cut off from the autograd graph.
    public func detach() throws -> Tensor { try unary(CTORCH_UNARY_DETACH) }

    /// Overwrites this tensor's values with `source` (broadcast) without autograd recording,
    /// e.g. for optimizer updates and loading saved state.
    public func assign(_ source: Tensor) throws { try TorchError.check(ctorch_assign(handle, source.handle)) }
}

/// Gradients computed on demand, like `torch.autograd.grad`.
public enum Autograd {
    /// The gradients of `outputs` (each seeded with the matching `gradOutputs` entry, or with 1
    /// for a one-element output when that entry is nil or the list is empty) with respect to
    /// `inputs`, one per input, without touching the inputs' accumulated `grad`. An input the
    /// outputs do not depend on gets zeros. `createGraph` makes the gradients differentiable, so
    /// a second call can take Hessian-vector products; the graph is then kept, as it is with
    /// `retainGraph`.
    public static func gradients(
        of outputs: [Tensor], withRespectTo inputs: [Tensor], gradOutputs: [Tensor?] = [],
        retainGraph: Bool = false, createGraph: Bool = false
    ) throws -> [Tensor] {
        guard gradOutputs.isEmpty || gradOutputs.count == outputs.count else {
            throw TorchError(message: "Autograd.gradients: \(gradOutputs.count) gradOutputs for \(outputs.count) outputs")
        }
        let outputHandles: [ctorch_tensor?] = outputs.map(\.handle)
        let seedHandles: [ctorch_tensor?] = gradOutputs.isEmpty ? outputs.map { _ in nil } : gradOutputs.map { $0?.handle }
        let inputHandles: [ctorch_tensor?] = inputs.map(\.handle)
        var results = [ctorch_tensor?](repeating: nil, count: inputs.count)
        let status = outputHandles.withUnsafeBufferPointer { o in
            seedHandles.withUnsafeBufferPointer { s in
                inputHandles.withUnsafeBufferPointer { i in
                    results.withUnsafeMutableBufferPointer { r in
                        ctorch_autograd_grad(o.baseAddress, s.baseAddress, Int64(outputs.count), i.baseAddress,
                                             Int64(inputs.count), retainGraph, createGraph, r.baseAddress)
                    }
                }
            }
        }
        try TorchError.check(status)
        return try results.map { try Tensor.wrap($0) }
    }
}

extension Tensor {
    /// Replaces this tensor's data (shape and dtype included) by `source`'s, keeping the
    /// object and its requires-grad flag, like `parameter.data = source` in PyTorch.
    public func setData(_ source: Tensor) throws { try TorchError.check(ctorch_set_data(handle, source.handle)) }
}

extension Module {
    /// Converts every floating-point parameter and buffer to `dtype` in place, like PyTorch's
    /// `module.double()` / `module.float()`; integer buffers (batch counters) are left as they are.
    public func convertFloatingPoint(to dtype: DType) throws {
        precondition(dtype.isFloatingPoint, "convertFloatingPoint needs a floating-point dtype")
        for (_, tensor) in namedState() where tensor.dtype.isFloatingPoint && tensor.dtype != dtype {
            try tensor.setData(tensor.detach().to(dtype))
        }
    }

    /// Stores every 4-D parameter (convolution weights) channels-last in place, like PyTorch's
    /// `module.to(memory_format=torch.channels_last)`. With channels-last inputs, convolutions
    /// then run without layout conversions; values and names are unchanged, and the tensors an
    /// optimizer already holds stay the same objects.
    public func useChannelsLast() throws {
        for (_, tensor) in namedState() where tensor.shape.count == 4 && !tensor.isChannelsLast {
            try tensor.setData(tensor.detach().channelsLast())
        }
    }
}

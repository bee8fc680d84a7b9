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

import CTorch

/// A failure reported by libtorch (through the C shim) or by the Swift layer's own checks.
///
/// `message` is libtorch's own text when libtorch raised the error, for example
/// "The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 1".
public struct TorchError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String

    public init(message: String) { self.message = message }

    public var description: String { "TorchError: \(message)" }

    /// The last error the shim recorded on this thread.
    static func last() -> TorchError {
        TorchError(message: String(cString: ctorch_last_error()))
    }

    /// Throws the shim's last error when `status` reports failure.
    static func check(_ status: Int32) throws {
        if status != 0 { throw last() }
    }
}

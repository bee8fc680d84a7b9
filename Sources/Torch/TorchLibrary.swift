import CTorch

/// Facts about the libtorch this build links.
public enum TorchLibrary {
    /// libtorch's version, e.g. "1.13.1".
    public static var version: String { String(cString: ctorch_version()) }
}

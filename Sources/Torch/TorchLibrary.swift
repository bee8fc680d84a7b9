import CTorch

/// Facts about the libtorch this build links (for `edgenas doctor`).
public enum TorchLibrary {
    /// libtorch's version, e.g. "1.13.1".
    public static var version: String { String(cString: ctorch_version()) }

    /// Quantized engines libtorch supports, e.g. ["fbgemm", "qnnpack"] (INT8 inference needs one).
    public static var supportedQuantizedEngines: [String] {
        String(cString: ctorch_supported_quantized_engines()).split(separator: ",").map(String.init)
    }

    /// libtorch's own description of its parallel backend and thread settings (at::get_parallel_info).
    public static var parallelInfo: String { String(cString: ctorch_parallel_info()) }
}

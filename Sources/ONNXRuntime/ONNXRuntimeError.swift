/// A failure to load ONNX Runtime, load a model into it or run one.
///
/// Messages that come from ONNX Runtime are its own text, with what the bridge was doing.
public enum ONNXRuntimeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No candidate library loaded; one attempt per place looked at, in order.
    case libraryNotLoaded(attempts: [ONNXRuntimeLibrary.Attempt])
    /// Intra-op threads must be at least 1 (and fit ONNX Runtime's 32-bit count).
    case invalidThreadCount(Int)
    /// The model file is missing or not a model ONNX Runtime accepts; `message` names the path.
    case modelNotLoaded(path: String, message: String)
    /// A run was refused (wrong input size or type, several inputs) or failed inside ONNX Runtime.
    case runFailed(modelPath: String, message: String)
    /// `endProfiling()` on a session created without a profiling prefix.
    case profilingNotEnabled(modelPath: String)
    /// Profiling already ended, or ONNX Runtime failed to end it or to write the profile.
    case profilingFailed(modelPath: String, message: String)
    /// A profile file that cannot be read or is not ONNX Runtime's JSON event array.
    case invalidProfile(path: String, message: String)

    public var description: String {
        switch self {
        case .libraryNotLoaded(let attempts):
            let tried = attempts.map { "  - \($0.source) \($0.candidate): \($0.reason)" }.joined(separator: "\n")
            return """
                ONNX Runtime library not loaded. Tried:
                \(tried)
                Install it with `scripts/install.sh --deps` (puts libonnxruntime.so.* in \
                \(ONNXRuntimeLibrary.installDirectory)), or set \(ONNXRuntimeLibrary.environmentVariable) \
                to the path of a libonnxruntime.so.
                """
        case .invalidThreadCount(let threads):
            return "ONNX Runtime intra-op threads must be between 1 and \(Int32.max), not \(threads)"
        case .modelNotLoaded(_, let message):
            return message
        case .runFailed(let modelPath, let message):
            return "ONNX Runtime could not run \(modelPath): \(message)"
        case .profilingNotEnabled(let modelPath):
            return "ONNX Runtime is not profiling \(modelPath): create the session with a profilingPrefix"
        case .profilingFailed(let modelPath, let message):
            return "ONNX Runtime could not end profiling of \(modelPath): \(message)"
        case .invalidProfile(let path, let message):
            return "\(path) is not an ONNX Runtime profile: \(message)"
        }
    }
}

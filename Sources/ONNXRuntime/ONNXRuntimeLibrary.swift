import CONNXRuntime
import Foundation

/// A loaded ONNX Runtime shared library (libonnxruntime) with its logging environment.
///
/// The library is found and loaded at run time, never linked, so EdgeNAS builds and its other
/// latency backends work on machines without ONNX Runtime. Where it looks, in order:
/// 1. the `path` argument,
/// 2. the `EDGENAS_ONNXRUNTIME_LIBRARY` environment variable,
/// 3. `libonnxruntime.so*` in `/usr/local/lib/edgenas/onnxruntime` (where `scripts/install.sh`
///    puts it),
/// 4. `libonnxruntime.so` on the dynamic loader's search path.
/// A library named by 1 or 2 is the only one tried: latencies measured on some other build
/// that happened to be found would be silently attributed to the wrong runtime.
///
/// `@unchecked Sendable`: the handle is never mutated after init; ONNX Runtime's API table is
/// immutable and its environment is safe to share between threads.
public final class ONNXRuntimeLibrary: @unchecked Sendable {
    /// One place looked at while loading, and why it did not work.
    public struct Attempt: Equatable, Sendable {
        /// Where the candidate came from, e.g. "path argument" or "EDGENAS_ONNXRUNTIME_LIBRARY".
        public let source: String
        /// The path (or bare library name) tried.
        public let candidate: String
        /// The loader's or the bridge's message.
        public let reason: String
    }

    public static let environmentVariable = "EDGENAS_ONNXRUNTIME_LIBRARY"
    public static let installDirectory = "/usr/local/lib/edgenas/onnxruntime"
    static let libraryName = "libonnxruntime.so"

    let handle: OpaquePointer
    /// The candidate that loaded (a path, or the bare name the dynamic loader resolved).
    public let path: String
    /// ONNX Runtime's version string, e.g. "1.32.0".
    public let version: String

    /// Loads ONNX Runtime from `path`, or from the first place above that works; throws
    /// `ONNXRuntimeError.libraryNotLoaded` listing every attempt otherwise.
    public init(path: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        var attempts: [Attempt] = []
        for (source, candidate) in Self.candidates(path: path, environment: environment, attempts: &attempts) {
            if let handle = ortb_runtime_open(candidate) {
                self.handle = handle
                self.path = candidate
                self.version = String(cString: ortb_runtime_version(handle))
                return
            }
            attempts.append(Attempt(source: source, candidate: candidate, reason: String(cString: ortb_last_error())))
        }
        throw ONNXRuntimeError.libraryNotLoaded(attempts: attempts)
    }

    deinit { ortb_runtime_free(handle) }

    /// (source, candidate) pairs to try in order; a search that finds nothing to try is
    /// recorded in `attempts` so the error still says where it looked.
    static func candidates(path: String?, environment: [String: String], attempts: inout [Attempt]) -> [(String, String)] {
        if let path { return [("path argument", path)] }
        if let fromEnvironment = environment[environmentVariable], !fromEnvironment.isEmpty {
            return [(environmentVariable, fromEnvironment)]
        }
        let installed = ((try? FileManager.default.contentsOfDirectory(atPath: installDirectory)) ?? [])
            .filter { $0.hasPrefix(libraryName) }
            .sorted()
            .map { ("install directory", "\(installDirectory)/\($0)") }
        if installed.isEmpty {
            attempts.append(Attempt(source: "install directory", candidate: installDirectory,
                                    reason: "no \(libraryName)* there"))
        }
        return installed + [("dynamic loader search path", libraryName)]
    }
}

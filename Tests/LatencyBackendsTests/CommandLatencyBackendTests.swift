import Foundation
import Hardware
import ProcessRunning
import Testing
import Vision
@testable import LatencyBackends

struct CommandLatencyBackendTests {
    let architecture = DetectorArchitecture(headKernelSize: 3, headGroups: 8, headChannels: 24, inputWidthPixels: 224)

    @Test func everyOutputFormatGivesSamplesInMilliseconds() throws {
        #expect(try BenchmarkOutput.parse("7.81", command: "c") == [7.81])
        #expect(try BenchmarkOutput.parse("  7.5 8 8.5 ", command: "c") == [7.5, 8, 8.5])
        #expect(try BenchmarkOutput.parse("7.5,8", command: "c") == [7.5, 8])
        #expect(try BenchmarkOutput.parse("1580 us", command: "c") == [1.58])
        #expect(try BenchmarkOutput.parse("0.002 s", command: "c") == [2])
        #expect(try BenchmarkOutput.parse("[1.5, 2.5]", command: "c") == [1.5, 2.5])
        #expect(try BenchmarkOutput.parse(#"{"samples_ms": [3, 4], "median_ms": 9}"#, command: "c") == [3, 4])
        #expect(try BenchmarkOutput.parse(#"{"median_ms": 9.25}"#, command: "c") == [9.25])
        for bad in ["", "latency: 7 ms", "-3", "0", "[1, \"x\"]", #"{"mean": 3}"#, "nan"] {
            #expect(throws: CommandBackendError.unreadableOutput(command: "c", line: bad)) { try BenchmarkOutput.parse(bad, command: "c") }
        }
    }

    @Test func placeholdersAreReplacedShellQuoted() {
        let filled = CommandLatencyBackend.fill(
            "bench --model {model} -t {threads} --arch {architecture} --size {input_size} | awk '{print $1}'",
            model: URL(fileURLWithPath: "/tmp/it's.onnx"), threads: 2, architecture: architecture)
        #expect(filled == #"bench --model '/tmp/it'\''s.onnx' -t 2 --arch 'k3-g8-c24-w224' --size 224 | awk '{print $1}'"#)
    }

    @Test func theLastOutputLineIsTheMeasurement() throws {
        // Progress lines first, then the result; the values echo the placeholders.
        let backend = CommandLatencyBackend(template: "echo warming up; echo '{threads}.5 {input_size}' ", threads: 3)
        let measurement = try backend.measure(architecture: architecture)
        #expect(measurement.samplesMilliseconds == [3.5, 224])
        #expect(measurement.backend == "command" && measurement.threads == 3 && measurement.architecture == "k3-g8-c24-w224")
        #expect(measurement.median == (3.5 + 224) / 2)
        #expect(measurement.stopReason == .maximumRuns && measurement.warmupRuns == 0)
    }

    @Test func theModelPlaceholderReadsTheGivenFile() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-model-\(UUID().uuidString).txt")
        try Data("12.5\n".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let backend = CommandLatencyBackend(template: "cat {model}", modelFile: { _ in file })
        #expect(try backend.measure(architecture: architecture).median == 12.5)
        #expect(throws: CommandBackendError.noModelFile(template: "cat {model}")) {
            try CommandLatencyBackend(template: "cat {model}").measure(architecture: architecture)
        }
    }

    /// `command TEMPLATE` from the command line or a config: {model} is the architecture's INT8
    /// QDQ ONNX model, the one `onnxruntime int8` measures.
    @Test func theSpecsModelIsTheDeployedInt8OnnxModel() throws {
        let backend = try LatencyBackendSpec(parsing: "command 'test -s {model} && grep -q QuantizeLinear {model} && echo 4.5'").makeBackend()
        #expect(try backend.measure(architecture: architecture).median == 4.5)
        let file = try LatencyBackendSpec.deployedModelFile(DeployedModel(precision: .int8))(architecture)
        #expect(try Data(contentsOf: file) == ONNXRuntimeBackend(precision: .int8, seed: 0).model(architecture))

        // Asked for FP32 (a runtime that quantizes by itself): the FP32 export, no quantize nodes.
        let fp32 = try LatencyBackendSpec(parsing: "command '! grep -q QuantizeLinear {model} && echo 7.5'")
            .makeBackend(LatencyBackendSettings(deployedPrecision: .fp32))
        #expect(try fp32.measure(architecture: architecture).median == 7.5)
        let fp32File = try LatencyBackendSpec.deployedModelFile(DeployedModel(precision: .fp32))(architecture)
        #expect(try Data(contentsOf: fp32File) == ONNXRuntimeBackend(precision: .fp32, seed: 0).model(architecture))
    }

    /// A board that runs LiteRT gets the full-integer INT8 TFLite model (`deployed_format: tflite`),
    /// the one Vela compiles: a `.tflite` file with TFLite's file identifier at bytes 4-7.
    @Test func aLiteRTBoardGetsTheInt8TFLiteModel() throws {
        let backend = try LatencyBackendSpec(parsing: "command 'case {model} in *.tflite) ;; *) exit 9;; esac; test \"$(head -c 8 {model} | tail -c 4)\" = TFL3 && echo 2.5'")
            .makeBackend(LatencyBackendSettings(deployedFormat: .tflite))
        #expect(try backend.measure(architecture: architecture).median == 2.5)
        let model = DeployedModel(format: .tflite, precision: .int8)
        let file = try LatencyBackendSpec.deployedModelFile(model)(architecture)
        #expect(file.pathExtension == "tflite")
        #expect(try Data(contentsOf: file) == model.data(architecture))
        // INT8 and FP32 are different files: the INT8 model carries int8 tensors' quantization.
        #expect(try model.data(architecture) != DeployedModel(format: .tflite, precision: .fp32).data(architecture))
    }

    /// LiteRT times the TFLite model through the repository's benchmark script, as a board with
    /// LiteRT would (docs/hardware-agent.md).
    @Test(.enabled(if: ProcessInfo.processInfo.environment["EDGENAS_PYTHON"] != nil,
                   "needs EDGENAS_PYTHON, the check scripts' environment with LiteRT (scripts/test.sh sets it)"))
    func liteRTTimesTheTFLiteModelThroughTheBenchmarkScript() throws {
        let python = try #require(ProcessInfo.processInfo.environment["EDGENAS_PYTHON"])
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let script = root.appendingPathComponent("scripts/benchmark_tflite.py").path
        let template = "\(CommandLatencyBackend.shellQuoted(python)) \(CommandLatencyBackend.shellQuoted(script)) {model} --threads {threads} --warmup 1 --runs 4"
        let backend = try LatencyBackendSpec.command(template).makeBackend(LatencyBackendSettings(deployedFormat: .tflite))
        let measurement = try backend.measure(architecture: architecture)
        #expect(measurement.samplesMilliseconds.count == 4 && measurement.median > 0)
    }

    @Test func aFailingCommandIsAClearError() throws {
        let backend = CommandLatencyBackend(template: "echo 'no such benchmark' >&2; exit 3")
        let error = #expect(throws: CommandBackendError.self) { try backend.measure(architecture: architecture) }
        #expect(error == .failed(command: "echo 'no such benchmark' >&2; exit 3", status: 3, standardError: "no such benchmark\n"))
        #expect(error?.description.contains("exited with status 3: no such benchmark") == true)
        let missing = CommandLatencyBackend(template: "/nonexistent/edgenas-bench")
        let notFound = #expect(throws: CommandBackendError.self) { try missing.measure(architecture: architecture) }
        guard case .failed(_, 127, let standardError) = notFound else {
            Issue.record("expected exit status 127 from the shell, got \(String(describing: notFound))")
            return
        }
        #expect(standardError.contains("/nonexistent/edgenas-bench"))
        let unreadable = CommandLatencyBackend(template: "echo fast")
        #expect(throws: CommandBackendError.unreadableOutput(command: "echo fast", line: "fast")) {
            try unreadable.measure(architecture: architecture)
        }
    }

    @Test func aHangingBenchmarkIsStoppedAtItsLimit() throws {
        let backend = CommandLatencyBackend(template: "sleep 30; echo 1", timeoutSeconds: 0.3)
        let start = ContinuousClock.now
        #expect(throws: ExternalCommandError.timedOut(command: "sleep 30; echo 1", seconds: 0.3)) {
            try backend.measure(architecture: architecture)
        }
        #expect(ContinuousClock.now - start < .seconds(25))  // under the command's 30 s: it was stopped
    }

    /// The limit holds while `DispatchQueue.global()` has no free thread (a busy 2-core machine,
    /// other work blocking that pool): its watchdog must not wait for that pool. Many blockers
    /// hold the pool until the command has ended, so a watchdog queued behind them would fire
    /// only when the pool has grown past all of them, long after the bound below.
    @Test func theLimitHoldsWhileTheSharedDispatchPoolIsBlocked() throws {
        let release = DispatchSemaphore(value: 0)
        let blockers = 64
        for _ in 0..<blockers {
            DispatchQueue.global().async { _ = release.wait(timeout: .now() + 60) }
        }
        defer { for _ in 0..<blockers { release.signal() } }
        let backend = CommandLatencyBackend(template: "sleep 30; echo 1", timeoutSeconds: 0.3)
        let start = ContinuousClock.now
        #expect(throws: ExternalCommandError.timedOut(command: "sleep 30; echo 1", seconds: 0.3)) {
            try backend.measure(architecture: architecture)
        }
        #expect(ContinuousClock.now - start < .seconds(10))
    }
}

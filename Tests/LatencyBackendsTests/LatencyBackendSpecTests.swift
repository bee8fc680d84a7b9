import Foundation
import Hardware
import Testing
@testable import LatencyBackends

struct LatencyBackendSpecTests {
    @Test func everyKindParses() throws {
        // One grammar for the command line and the config: int8 [ENGINE] and fp32 (alias local).
        #expect(try LatencyBackendSpec(parsing: "int8") == .int8(engine: nil))
        let engine = try #require(QuantizedDetector.availableEngines.first)
        #expect(try LatencyBackendSpec(parsing: "int8 \(engine)") == .int8(engine: engine))
        #expect(try LatencyBackendSpec(parsing: "fp32") == .fp32)
        #expect(try LatencyBackendSpec(parsing: "local") == .fp32)
        #expect(try LatencyBackendSpec(parsing: "onnxruntime") == .onnxruntime(.int8))
        #expect(try LatencyBackendSpec(parsing: "onnxruntime fp32") == .onnxruntime(.fp32))
        #expect(try LatencyBackendSpec(parsing: "  agent http://127.0.0.1:8420 ") == .agent(URL(string: "http://127.0.0.1:8420")!))
        #expect(try LatencyBackendSpec(parsing: "command 'bench --model {model}'") == .command("bench --model {model}"))
        #expect(try LatencyBackendSpec(parsing: "command bench -t {threads}") == .command("bench -t {threads}"))
        #expect(try LatencyBackendSpec(parsing: "predictor models/latency.json") == .predictor(path: "models/latency.json"))
        #expect(try LatencyBackendSpec(parsing: "vela ethos-u65-256") == .vela(accelerator: "ethos-u65-256"))
        // Only an NPU compiler says how the network was mapped (what npu_fallback_ops needs).
        #expect(try LatencyBackendSpec(parsing: "vela ethos-u65-256").reportsNPUMapping)
        #expect(try !LatencyBackendSpec(parsing: "command 'vela-bench {model}'").reportsNPUMapping)
    }

    @Test func theDescriptionParsesBack() throws {
        for spec: LatencyBackendSpec in [.int8(engine: nil), .int8(engine: QuantizedDetector.availableEngines.first), .fp32, .onnxruntime(.int8), .onnxruntime(.fp32), .agent(URL(string: "https://board.example:9000")!), .command("b 'x' {model}"),
                                         .predictor(path: "p.json"), .vela(accelerator: "ethos-u55-128")] {
            #expect(try LatencyBackendSpec(parsing: spec.description) == spec)
        }
    }

    @Test func mistakesAreNamed() {
        #expect(throws: LatencyBackendSpecError.unknownKind("remote http://x")) { try LatencyBackendSpec(parsing: "remote http://x") }
        #expect(throws: LatencyBackendSpecError.unexpectedArgument("local 2", kind: "local")) { try LatencyBackendSpec(parsing: "local 2") }
        #expect(throws: LatencyBackendSpecError.unexpectedArgument("fp32 x", kind: "fp32")) { try LatencyBackendSpec(parsing: "fp32 x") }
        let engine = #expect(throws: LatencyBackendSpecError.self) { try LatencyBackendSpec(parsing: "int8 tpu") }
        #expect(engine?.description.contains("one of this libtorch's engines") == true)
        for text in ["agent", "agent 127.0.0.1:8420", "agent ftp://board"] {
            let error = #expect(throws: LatencyBackendSpecError.self) { try LatencyBackendSpec(parsing: text) }
            #expect(error?.description.contains("an http:// or https:// URL") == true)
        }
        #expect(throws: LatencyBackendSpecError.self) { try LatencyBackendSpec(parsing: "command ''") }
        #expect(throws: LatencyBackendSpecError.self) { try LatencyBackendSpec(parsing: "predictor") }
        let npu = #expect(throws: LatencyBackendSpecError.self) { try LatencyBackendSpec(parsing: "vela ethos-u99") }
        #expect(npu?.description.contains("an Ethos-U configuration: ethos-u55-32") == true)
        let precision = #expect(throws: LatencyBackendSpecError.self) { try LatencyBackendSpec(parsing: "onnxruntime int4") }
        #expect(precision?.description.contains("int8 or fp32") == true)
    }

    @Test func backendsAreBuiltWithTheSettings() throws {
        let settings = LatencyBackendSettings(threads: 2, agentToken: "secret")
        #expect(try LatencyBackendSpec.fp32.makeBackend(settings).name == "torch-fp32")
        let int8 = try #require(try LatencyBackendSpec.int8(engine: nil).makeBackend(settings) as? TorchInt8Backend)
        #expect(int8.engine == QuantizedDetector.defaultEngine && int8.threads == 2)
        let onnx = try #require(try LatencyBackendSpec.onnxruntime(.fp32).makeBackend(settings) as? ONNXRuntimeBackend)
        #expect(onnx.name == "onnxruntime-fp32" && onnx.threads == 2)
        let agent = try #require(try LatencyBackendSpec.agent(URL(string: "http://127.0.0.1:1")!).makeBackend(settings) as? AgentLatencyBackend)
        #expect(agent.token == "secret" && agent.threads == 2)
        #expect(throws: AgentBackendError.missingToken(url: "http://127.0.0.1:1")) {
            try LatencyBackendSpec.agent(URL(string: "http://127.0.0.1:1")!).makeBackend(LatencyBackendSettings(agentToken: ""))
        }
        #expect(try LatencyBackendSpec.command("echo 1").makeBackend(settings).name == "command")
        let missing = #expect(throws: LatencyPredictorError.self) {
            try LatencyBackendSpec.predictor(path: "/nonexistent/p.json").makeBackend(settings)
        }
        #expect(missing?.description.contains("/nonexistent/p.json") == true)
    }
}

import ArgumentParser
import Foundation
import Hardware
import LatencyAgent
import LatencyBackends

/// `edgenas agent`: runs on the board and measures the models search workers send it.
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run the latency agent on a board: an HTTP server that measures models for search workers.",
        discussion: """
        Every request but GET /v1/health needs 'Authorization: Bearer TOKEN'. Measurements run one \
        at a time in arrival order; each answer reports its queue position and wait. The protocol \
        is in docs/hardware-agent.md. Search workers use it with --latency 'agent http://BOARD:PORT'.
        """)

    @Option(help: "The bearer token clients must send (default: $\(AgentProtocol.tokenEnvironmentVariable)); the agent does not start without one.")
    var token: String?

    @Option(help: "Address to listen on. The default is loopback only; 0.0.0.0 listens on every interface.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0: any free port).")
    var port = 8420

    @Option(help: "Largest model upload in MiB; larger ones get HTTP 413.")
    var maxUploadMb = 64.0

    @Option(help: "Requests waiting or running at once; more get HTTP 503 and clients retry later.")
    var maxQueue = 64

    @OptionGroup var threading: MeasurementThreadsOption

    @Option(help: """
        Measure with this external benchmark command instead of the built-in backend (ONNX Runtime for uploaded ONNX models, libtorch FP32 otherwise). \
        Placeholders: {model} (the uploaded file), {threads}, {architecture}, {input_size}, {input_width}, {input_height}. Its last \
        output line is the latency in ms (see docs/hardware-agent.md).
        """)
    var benchmarkCommand: String?

    @Option(help: "Seconds after which the benchmark command is stopped.")
    var benchmarkTimeout = 300.0

    @Option(help: "Seed of the built-in backend's random weights and input.")
    var seed: UInt64 = 0

    @Option(help: "Most warm-up runs a request may ask for (more are lowered to this, and the answer says so).")
    var maxWarmup = AgentLimits().maximumWarmupRuns

    @Option(help: "Most timed runs a request may ask for.")
    var maxRuns = AgentLimits().maximumRuns

    @Option(help: "Most seconds of timed runs a request may ask for.")
    var maxSeconds = AgentLimits().maximumTimedSeconds

    @Option(help: "Most threads a request may ask for (default: this machine's cores).")
    var maxThreads = AgentLimits().maximumThreads

    @Option(help: "Wall-clock cap on one measurement, any backend; past it the client gets HTTP 422.")
    var measureTimeout = AgentLimits().measurementTimeoutSeconds

    @Option(help: "Uploads received at once; more get HTTP 503 before their body is read.")
    var maxUploads = AgentLimits().maximumConcurrentUploads

    @Option(help: "Seconds an upload may take to arrive; slower ones get HTTP 408.")
    var uploadTimeout = AgentLimits().uploadTimeoutSeconds

    @Option(help: "Seconds before an idle connection is closed.")
    var idleTimeout = AgentLimits().idleTimeoutSeconds

    @Option(help: "Seconds open requests get after SIGTERM/SIGINT before the agent stops anyway.")
    var shutdownGrace = AgentLimits().shutdownGraceSeconds

    func run() async throws {
        let token = token ?? ProcessInfo.processInfo.environment[AgentProtocol.tokenEnvironmentVariable] ?? ""
        guard maxUploadMb > 0 else { throw ValidationError("--max-upload-mb must be positive; got \(maxUploadMb)") }
        let backend: AgentMeasurementBackend = benchmarkCommand.map { .command(template: $0, timeoutSeconds: benchmarkTimeout) }
            ?? .torch(policy: .endToEnd, seed: seed)
        let configuration = LatencyAgentConfiguration(
            host: host, port: port, token: token, maximumUploadBytes: Int(maxUploadMb * 1024 * 1024),
            maximumQueueLength: maxQueue, defaultThreads: threading.threads, backend: backend,
            limits: AgentLimits(
                maximumWarmupRuns: maxWarmup, maximumRuns: maxRuns, maximumTimedSeconds: maxSeconds, maximumThreads: maxThreads,
                measurementTimeoutSeconds: measureTimeout, maximumConcurrentUploads: maxUploads, uploadTimeoutSeconds: uploadTimeout,
                idleTimeoutSeconds: idleTimeout, shutdownGraceSeconds: shutdownGrace))
        try await LatencyAgentServer(configuration: configuration).run()
    }
}

import Foundation
import Hummingbird
import Logging
import Reports
import Search

/// A live web page of a running or finished study: progress, the Pareto front of AP@0.5 vs
/// latency and the trials table, read from the storage on every request. The page reloads
/// itself every `refreshSeconds`.
public struct Dashboard: Sendable {
    public var storage: any StudyStorage
    public var studyName: String
    public var refreshSeconds: Int

    public init(storage: any StudyStorage, studyName: String, refreshSeconds: Int = 5) {
        self.storage = storage
        self.studyName = studyName
        self.refreshSeconds = refreshSeconds
    }

    /// The study as the storage holds it now.
    public func snapshot() async throws -> StudySnapshot {
        let record = try await storage.study(named: studyName)
        return StudySnapshot(record: record, trials: try await storage.trials(studyID: record.id, states: nil))
    }

    /// The page's HTML.
    public func page() async throws -> String {
        let study = try await snapshot()
        let report = StudyReport(studies: [study])
        let count = { (state: TrialState) in study.trials.filter { $0.state == state }.count }
        let budget = Int(study.record.attributes[PipelineAttribute.budgetTrials] ?? "")
            ?? Int(study.record.attributes["budget"] ?? "")
        let complete = count(.complete)
        let percent = budget.map { min(100, 100 * complete / max(1, $0)) }
        let front = study.searchFront.count
        var html = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="\(refreshSeconds)">
        <title>EdgeNAS: \(xmlEscaped(studyName))</title>
        <style>
        body { font-family: sans-serif; margin: 1.5em auto; max-width: 1000px; color: #222; }
        table { border-collapse: collapse; margin: 1em 0; }
        th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
        th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
        progress { width: 30em; height: 1.2em; }
        svg { max-width: 100%; height: auto; }
        </style></head><body>
        <h1>Study \(xmlEscaped(studyName))</h1>
        <p id="progress">\(complete)\(budget.map { " of \($0)" } ?? "") trials complete, \(count(.running)) running, \
        \(count(.waiting)) waiting, \(count(.failed)) failed, \(count(.pruned)) pruned; Pareto front: \(front) trials.\
        \(study.record.attributes[PipelineAttribute.estimator].map { " Estimator: \(xmlEscaped($0))." } ?? "")</p>

        """
        if let percent { html += "<progress max=\"100\" value=\"\(percent)\">\(percent) %</progress>\n" }
        html += "<h2>Pareto front</h2>\n"
        if study.complete.isEmpty {
            html += "<p>No complete trial yet.</p>\n"
        } else {
            html += "<figure>\n" + report.paretoPlot().svg() + "</figure>\n"
        }
        html += "<h2>Trials</h2>\n" + report.trialsTable.html
        html += "<p>Updated \(ISO8601DateFormatter().string(from: Date())); this page reloads every \(refreshSeconds) s.</p>\n"
        return html + "</body></html>\n"
    }

    /// The routes: `/` (the page), `/pareto.svg`, `/trials.json`.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/") { _, _ in HTMLResponse(body: try await page(), contentType: "text/html; charset=utf-8") }
        router.get("/pareto.svg") { _, _ in
            HTMLResponse(body: StudyReport(studies: [try await snapshot()]).paretoPlot().svg(), contentType: "image/svg+xml")
        }
        router.get("/trials.json") { _, _ in
            let study = try await snapshot()
            let json = try StudyExport.json(record: study.record, trials: study.trials)
            return HTMLResponse(body: String(decoding: json, as: UTF8.self), contentType: "application/json")
        }
        return router
    }

    /// Serves the dashboard until the task is cancelled. `onRunning` receives the bound port
    /// (useful with port 0, which picks a free one).
    public func serve(host: String = "127.0.0.1", port: Int = 8080,
                      onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        var logger = Logger(label: "edgenas.dashboard")
        logger.logLevel = .warning
        let app = Application(
            router: router(), configuration: .init(address: .hostname(host, port: port), serverName: "edgenas-dashboard"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) }, logger: logger)
        try await app.run()
    }
}

/// A text response with a content type.
struct HTMLResponse: ResponseGenerator {
    var body: String
    var contentType: String

    func response(from request: Request, context: some RequestContext) throws -> Response {
        Response(status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

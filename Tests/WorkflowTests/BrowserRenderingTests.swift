import DetectionData
import Estimators
import Foundation
import Search
import Storage
import Testing
@testable import Workflow

/// Headless Chromium (Debian's `chromium`, installed by scripts/install.sh): loads a page,
/// returns its DOM after scripts and layout, or a screenshot.
enum HeadlessChromium {
    static func executable() throws -> String {
        let candidates = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        guard let path = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw BrowserError.missing("headless Chromium is not installed (looked for \(candidates.joined(separator: ", "))); "
                                       + "install it with 'apt-get install chromium' or scripts/install.sh --deps")
        }
        return path
    }

    /// Runs chromium with `arguments` and returns its standard output.
    static func run(_ arguments: [String]) async throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try executable())
        // Root (as in CI containers) needs --no-sandbox; a throwaway profile keeps runs apart.
        let profile = try temporaryDirectory("chromium-profile")
        defer { try? FileManager.default.removeItem(at: profile) }
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                             "--user-data-dir=\(profile.path)"] + arguments
        let output = profile.appendingPathComponent("stdout")
        FileManager.default.createFile(atPath: output.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = FileHandle.nullDevice
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch { continuation.resume(throwing: error) }
        }
        guard status == 0 else { throw BrowserError.failed(status: status, arguments: arguments) }
        return try String(contentsOf: output, encoding: .utf8)
    }

    static func dom(of url: String) async throws -> String {
        try await run(["--dump-dom", url])
    }

    static func screenshot(of url: String, to file: URL) async throws -> Image {
        _ = try await run(["--screenshot=\(file.path)", "--window-size=1100,1600", url])
        return try ImageCodec.decode(contentsOf: file)
    }
}

enum BrowserError: Error, CustomStringConvertible {
    case missing(String)
    case failed(status: Int32, arguments: [String])

    var description: String {
        switch self {
        case .missing(let message): message
        case .failed(let status, let arguments): "chromium exited with status \(status) for \(arguments.joined(separator: " "))"
        }
    }
}

/// Count of non-overlapping occurrences of `needle`.
func occurrences(of needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

/// What a screenshot shows: the share of pixels that are not near-white, and of those that are
/// a plot colour (the Okabe-Ito blue of the first series, #0072B2, with some tolerance).
func inkShares(_ image: Image) -> (ink: Double, seriesBlue: Double) {
    var ink = 0, blue = 0
    let pixels = image.width * image.height
    for index in 0..<pixels {
        let base = index * image.channels
        let r = Int(image.pixels[base]), g = Int(image.pixels[base + 1]), b = Int(image.pixels[base + 2])
        if r < 230 || g < 230 || b < 230 { ink += 1 }
        if abs(r - 0x00) < 60, abs(g - 0x72) < 50, abs(b - 0xB2) < 50 { blue += 1 }
    }
    return (Double(ink) / Double(pixels), Double(blue) / Double(pixels))
}

/// Runs a tiny fake search into a fresh SQLite study, for the pages to show.
func tinyStudy(in directory: URL) async throws -> (SQLiteStorage, ProjectConfig) {
    let config = try pipelineConfig(directory: directory, trials: 8)
    let storage = try SQLiteStorage(path: directory.appendingPathComponent("study.db").path)
    try await SearchPipeline(config: config, storage: storage, components: fakeComponents, log: { _ in }).run()
    return (storage, config)
}

// The two tests start chromium; serialised so they do not compete for the two cores.
@Suite(.serialized) struct BrowserRenderingTests {
    @Test func theReportRendersTheFrontAndTheTablesInChromium() async throws {
        let directory = try temporaryDirectory("report-browser")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (storage, config) = try await tinyStudy(in: directory)
        defer { Task { await storage.close() } }
        let snapshot = try await Dashboard(storage: storage, studyName: config.name).snapshot()
        let page = URL(fileURLWithPath: config.output).appendingPathComponent("index.html")

        let dom = try await HeadlessChromium.dom(of: page.absoluteString)
        let retrained = snapshot.retrained.count
        #expect(occurrences(of: "<circle class=\"trial\"", in: dom) == snapshot.complete.count + retrained)
        #expect(occurrences(of: "class=\"front\"", in: dom) == 2)        // the search's front and the retrained one
        #expect(dom.contains("class=\"baseline\""))
        for heading in ["Speed-up", "Pareto front", "Chosen architectures", "All trials"] {
            #expect(dom.contains("<h2>\(heading)</h2>"), "heading \(heading) missing")
        }
        // Table rows: speed-up (1), chosen (retrained), all trials (8), each with a header row.
        #expect(occurrences(of: "<tr>", in: dom) == (1 + 1) + (1 + retrained) + (1 + snapshot.trials.count))
        #expect(dom.contains("k5-g1-c96-w320"))

        let image = try await HeadlessChromium.screenshot(of: page.absoluteString, to: directory.appendingPathComponent("report.png"))
        #expect(image.width == 1100 && image.height == 1600)
        let shares = inkShares(image)
        #expect(shares.ink > 0.02, "the screenshot is blank (\(shares.ink) of pixels inked)")
        #expect(shares.seriesBlue > 0.0005, "no plot points in the screenshot (\(shares.seriesBlue))")
    }

    /// `edgenas demo`'s project at a smaller scale, with the real components: the profile on
    /// libtorch INT8, the timed plan, the two-stage selection with real trainings and proxies,
    /// the search, the retraining and the report, then the page in Chromium.
    @Test func theDemoReportShowsTheProfileTheRankingTheFrontAndTheTables() async throws {
        let directory = try temporaryDirectory("demo-browser")
        defer { try? FileManager.default.removeItem(at: directory) }
        var demo = DemoProject(seed: 1, threads: 2)
        (demo.trainImages, demo.baseTrainImages, demo.baseEpochs, demo.supernetEpochs, demo.validationImages, demo.batchSize) = (8, 8, 2, 1, 4, 4)
        (demo.trials, demo.searchHours, demo.epochs, demo.shortEpochs) = (5, 0.004, 4, 1)
        (demo.references, demo.retrainCandidates, demo.bootstrapResamples) = (4, 2, 100)
        let config = try ProjectConfig.load(path: try demo.prepare(in: directory).path)
        let storage = try SQLiteStorage(path: directory.appendingPathComponent("study.db").path)
        defer { Task { await storage.close() } }
        var components = try PipelineComponents.standard(config: config, splits: try DatasetSplits.load(config.dataset))
        // The plan times a real training, but whether 5 of them fit in 0.004 h depends on the
        // machine: a fast CI runner took 2.9 s and chose full training, skipping the selection this
        // test is about. Reporting at least 6 s keeps the timed path and makes the plan the same
        // everywhere: the selection runs.
        let timeTraining = components.fullTrainingSeconds
        components.fullTrainingSeconds = { max(try timeTraining($0), 6) }
        // The 0.004 h only shapes the plan: on a busy machine one trial took longer than that
        // and the search stopped after the baseline. A clock that stands still runs all 5.
        let now = Date()
        components.clock = { now }
        let log = LogLines()
        let started = Date()
        let result = try await SearchPipeline(config: config, storage: storage, components: components, log: { line in
            log.append(line)
            print(String(format: "[%.1f s] ", Date().timeIntervalSince(started)) + line)
        }).run()
        let snapshot = try await Dashboard(storage: storage, studyName: config.name).snapshot()
        let selection = try decodeJSONText(EstimatorSelectionSummary.self,
                                           try #require(snapshot.record.attributes[PipelineAttribute.estimatorSelection]))
        #expect(selection.references.count == 4 && selection.rows.count >= 24)
        #expect(snapshot.record.attributes[PipelineAttribute.estimator] == EstimatorCatalog.name(ofStrategy: selection.chosen, fullEpochs: 4))
        #expect(log.lines.contains { $0.hasPrefix("profile: layers add up to") })

        let dom = try await HeadlessChromium.dom(of: result.reportPage.absoluteString)
        for heading in ["Layer profile", "Estimator ranking", "Speed-up", "Pareto front", "Chosen architectures", "All trials"] {
            #expect(dom.contains("<h2>\(heading)</h2>"), "heading \(heading) missing")
        }
        // Every search trial with an AP (none for a proxy or predictor) and every full training is
        // a point; each series draws its front.
        let searchPoints = snapshot.complete.filter { snapshot.searchAP($0) != nil }.count
        #expect(occurrences(of: "<circle class=\"trial\"", in: dom) == searchPoints + snapshot.retrained.count)
        #expect(occurrences(of: "class=\"front\"", in: dom) == (searchPoints > 0 ? 2 : 1))
        #expect(snapshot.retrained.count >= 2)
        #expect(dom.contains("class=\"baseline\""))
        // Table rows, each table with its header: ranking, speed-up, chosen, all trials.
        #expect(occurrences(of: "<tr>", in: dom)
            == (1 + selection.rows.count) + (1 + 1) + (1 + snapshot.chosen.count) + (1 + snapshot.trials.count))
        // The speed-up row charges the selection's cost.
        #expect(StudyReport(studies: [snapshot]).speedUpTable.rows[0][7] != "-")

        let image = try await HeadlessChromium.screenshot(of: result.reportPage.absoluteString, to: directory.appendingPathComponent("demo.png"))
        let shares = inkShares(image)
        #expect(shares.ink > 0.02, "the screenshot is blank (\(shares.ink) of pixels inked)")
    }

    @Test func theDashboardServesTheLiveStudyOnLoopback() async throws {
        let directory = try temporaryDirectory("dashboard-browser")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (storage, config) = try await tinyStudy(in: directory)
        defer { Task { await storage.close() } }
        let dashboard = Dashboard(storage: storage, studyName: config.name, refreshSeconds: 30)
        let port = PortBox()
        let server = Task { try await dashboard.serve(host: "127.0.0.1", port: 0) { await port.set($0) } }
        defer { server.cancel() }
        let bound = try await port.wait(seconds: 20)
        let url = "http://127.0.0.1:\(bound)/"

        let dom = try await HeadlessChromium.dom(of: url)
        let snapshot = try await dashboard.snapshot()
        #expect(dom.contains("8 of 8 trials complete, 0 running"))
        #expect(dom.contains("Pareto front: \(snapshot.searchFront.count) trials"))
        #expect(occurrences(of: "<circle class=\"trial\"", in: dom) == 8 + snapshot.retrained.count)
        #expect(occurrences(of: "<tr>", in: dom) == 1 + 8)
        #expect(dom.contains("http-equiv=\"refresh\" content=\"30\""))

        let image = try await HeadlessChromium.screenshot(of: url, to: directory.appendingPathComponent("dashboard.png"))
        let shares = inkShares(image)
        #expect(shares.ink > 0.02, "the screenshot is blank (\(shares.ink) of pixels inked)")
        #expect(shares.seriesBlue > 0.0005, "no plot points in the screenshot (\(shares.seriesBlue))")

        // A trial added while the server runs shows up on the next load: the page is live.
        let record = try await storage.study(named: config.name)
        _ = try await storage.enqueueTrial(studyID: record.id, parameters: ["kernel": .int(3)])
        #expect(try await HeadlessChromium.dom(of: url).contains("1 waiting"))
    }
}

/// The port the dashboard bound, handed from its start-up callback to the test.
actor PortBox {
    private var port: Int?

    func set(_ value: Int) { port = value }

    func wait(seconds: Double) async throws -> Int {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let port { return port }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw BrowserError.missing("the dashboard did not start within \(seconds) s")
    }
}

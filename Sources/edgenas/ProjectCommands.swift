import ArgumentParser
import DetectionData
import Foundation
import Search
import Storage
import Workflow

/// `edgenas init`: writes a commented example project config.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Write a commented example project config (edgenas.yaml).")

    @Option(help: "Where to write the config.")
    var output = "edgenas.yaml"

    @Flag(help: "Replace the file if it exists.")
    var force = false

    func run() throws {
        if FileManager.default.fileExists(atPath: output), !force {
            throw ValidationError("\(output) exists; pass --force to replace it")
        }
        try ProjectConfig.example.write(toFile: output, atomically: true, encoding: .utf8)
        print("wrote \(output); edit dataset.path, then run: edgenas search --config \(output)")
    }
}

/// Prints pipeline progress lines as they come (a pipe or log file is block-buffered otherwise).
@Sendable func printProgress(_ line: String) {
    print(line)
    fflush(nil)
}

/// Runs the whole pipeline of a config: plan, search, retraining, report.
func runPipeline(config: ProjectConfig) async throws -> PipelineResult {
    let storage = try await makeStudyStorage(url: config.storage)
    defer { Task { await storage.close() } }
    let splits = try DatasetSplits.load(config.dataset)
    printProgress("dataset: \(splits.train.count) training and \(splits.validation.count) validation images (\(config.dataset.path))")
    let components = try PipelineComponents.standard(config: config, splits: splits)
    return try await SearchPipeline(config: config, storage: storage, components: components, log: printProgress).run()
}

/// `edgenas search`: the main loop on a project config. Rerunning continues the study.
struct SearchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Search architectures as a project config says: plan, search, retrain the Pareto candidates, report.",
        discussion: "Rerunning with the same config continues the same study in its storage.")

    @Option(help: "Project config (write an example with 'edgenas init').")
    var config = "edgenas.yaml"

    func run() async throws {
        let project = try ProjectConfig.load(path: config)
        let started = Date()
        let result = try await runPipeline(config: project)
        printProgress("done in \(formatSeconds(Date().timeIntervalSince(started))): \(result.completeTrials) complete trials, "
                      + "Pareto front: trials \(result.frontTrialNumbers.map(String.init).joined(separator: ", "))")
        print(result.reportPage.path)
    }
}

/// `edgenas demo`: the whole pipeline on synthetic data made on the spot, small enough for a
/// laptop (about 10 minutes on 2 cores).
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the whole pipeline on generated synthetic data at small scale and print the report's path.",
        discussion: "The directory keeps the data, the config (edgenas.yaml), the study and the report; running the demo again continues it.")

    @Option(help: "Directory for the demo's data, config, study and report.")
    var output = "edgenas-demo"

    @Option(help: "Training threads (latency is measured on 1).")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Seed of the data and the search.")
    var seed: UInt64 = 0

    func run() async throws {
        let started = Date()
        let directory = URL(fileURLWithPath: output).standardizedFileURL
        let data = directory.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: data.appendingPathComponent("ImageSets/Main/val.txt").path) {
            var synthetic = SyntheticDataConfig()
            synthetic.imageWidth = 256
            synthetic.imageHeight = 256
            synthetic.figureHeight = 48...160
            synthetic.figuresPerImage = 1...3
            let summary = try SyntheticDataWriter(config: synthetic).write(
                to: data, seed: seed, trainCount: DemoScale.trainImages, valCount: DemoScale.valImages)
            printProgress("demo: wrote \(summary.trainImages) training and \(summary.valImages) validation images to \(data.path)")
        }
        let configURL = directory.appendingPathComponent("edgenas.yaml")
        try DemoScale.config(seed: seed, threads: threads).write(to: configURL, atomically: true, encoding: .utf8)
        printProgress("demo: config \(configURL.path)")
        let project = try ProjectConfig.load(path: configURL.path)
        let result = try await runPipeline(config: project)
        printProgress("demo: done in \(formatSeconds(Date().timeIntervalSince(started)))")
        print("report: \(result.reportPage.path)")
    }
}

/// The demo's size, chosen so the whole pipeline ends within 15 minutes on 2 cores.
enum DemoScale {
    static let trainImages = 160
    static let valImages = 40

    static func config(seed: UInt64, threads: Int) -> String {
        """
        # Written by 'edgenas demo': the whole pipeline at small scale on synthetic data.
        name: demo
        dataset: {format: voc, path: data, train: train, val: val, classes: [person]}
        base_model: k5-g1-c96-w320
        search_space: default
        objectives: [ap50, latency]
        budget: {trials: 12, hours: 0.1}
        estimator: auto
        sampler: auto
        latency: {backend: int8, threads: 1}
        storage: sqlite://study.db
        seed: \(seed)
        training: {epochs: 24, short_epochs: 3, batch_size: 16, learning_rate: 0.01, optimizer: adamw, threads: \(threads)}
        retrain: {candidates: 3}
        output: report

        """
    }
}

/// `edgenas report`: the HTML/SVG/CSV/JSON report of one or more studies.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a study's report: HTML page, Pareto front and profile SVGs, CSV/JSON of all trials.",
        discussion: "Repeat --study to compare studies (one Pareto front per study's estimator).")

    @Option(help: "Study storage URL.")
    var storage: String

    @Option(help: "Study name (repeatable).")
    var study: [String]

    @Option(help: "Output directory.")
    var output = "report"

    func run() async throws {
        guard !study.isEmpty else { throw ValidationError("--study: give at least one study name") }
        let store = try await makeStudyStorage(url: storage)
        defer { Task { await store.close() } }
        var snapshots: [StudySnapshot] = []
        for name in study {
            let record = try await store.study(named: name)
            snapshots.append(StudySnapshot(record: record, trials: try await store.trials(studyID: record.id, states: nil)))
        }
        let page = try StudyReport(studies: snapshots).write(to: URL(fileURLWithPath: output))
        print(page.path)
    }
}

/// `edgenas dashboard`: a live page of a study, served on loopback by default.
struct DashboardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard", abstract: "Serve a live web page of a study: progress, Pareto front, trials.")

    @OptionGroup var location: StudyLocation

    @Option(help: "Address to listen on (127.0.0.1 keeps it on this machine).")
    var host = "127.0.0.1"

    @Option(help: "Port.")
    var port = 8080

    @Option(help: "Seconds between the page's reloads.")
    var refresh = 5

    func run() async throws {
        let storage = try await makeStudyStorage(url: location.storage)
        defer { Task { await storage.close() } }
        _ = try await storage.study(named: location.study)
        let dashboard = Dashboard(storage: storage, studyName: location.study, refreshSeconds: refresh)
        try await dashboard.serve(host: host, port: port) { bound in
            printProgress("dashboard of '\(location.study)' at http://\(host):\(bound)/ (Ctrl-C stops it)")
        }
    }
}

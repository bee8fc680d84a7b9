import ArgumentParser
import Estimators
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

/// Runs the whole pipeline of a config: profile, plan (and selection), search, retraining, report.
func runPipeline(config: ProjectConfig, heartbeat: Double = 10, staleTimeout: Double = 60) async throws -> PipelineResult {
    return try await withStudyStorage(url: config.storage) { storage in
        let splits = try DatasetSplits.load(config.dataset)
        printProgress("dataset: \(splits.train.count) training and \(splits.validation.count) validation images (\(config.dataset.path))")
        let components = try PipelineComponents.standard(config: config, splits: splits)
        var pipeline = SearchPipeline(config: config, storage: storage, components: components, log: printProgress)
        pipeline.heartbeatInterval = .milliseconds(Int(heartbeat * 1000))
        pipeline.staleTrialTimeout = staleTimeout
        return try await pipeline.run()
    }
}

/// `edgenas search`: the main loop on a project config. Rerunning continues the study.
struct SearchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Search architectures as a project config says: profile, plan, select an estimator, search, retrain the Pareto candidates, report.",
        discussion: "Rerunning with the same config continues the same study in its storage.")

    @Option(help: "Project config (write an example with 'edgenas init').")
    var config = "edgenas.yaml"

    @OptionGroup var pretrained: PretrainedOptionGroup

    @Option(help: "Seconds between heartbeats of the running trial.")
    var heartbeat = 10.0

    @Option(help: "Seconds without a heartbeat after which a worker's trial counts as dead (failed and queued again).")
    var staleTimeout = 60.0

    func run() async throws {
        var project = try ProjectConfig.load(path: config)
        if let path = pretrained.path {
            // As if the config said training.init (with its own learning rate when it gives one).
            project.training.initialization = URL(fileURLWithPath: path).standardizedFileURL.path
            project.training.initializationClasses = pretrained.initClasses.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        }
        let started = Date()
        let result = try await runPipeline(config: project, heartbeat: heartbeat, staleTimeout: staleTimeout)
        printProgress("done in \(formatSeconds(Date().timeIntervalSince(started))): \(result.completeTrials) complete trials, "
                      + "Pareto front: trials \(result.frontTrialNumbers.map(String.init).joined(separator: ", "))")
        print(result.reportPage.path)
    }
}

/// `edgenas demo`: the whole pipeline on synthetic data made on the spot, small enough for a
/// laptop (within 15 minutes on 2 cores).
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the whole pipeline on generated synthetic data at small scale and print the report's path.",
        discussion: "The directory keeps the data, the config (edgenas.yaml), the study and the report; running the demo again continues it.")

    @Option(help: "Directory for the demo's data, config, study and report.")
    var output = "edgenas-demo"

    @OptionGroup var threading: TrainingThreadsOption

    @Option(help: "Seed of the data and the search.")
    var seed: UInt64 = 0

    func run() async throws {
        let started = Date()
        let directory = URL(fileURLWithPath: output).standardizedFileURL
        let configURL = try DemoProject(seed: seed, threads: threading.threads).prepare(in: directory, log: printProgress)
        printProgress("demo: config \(configURL.path)")
        let project = try ProjectConfig.load(path: configURL.path)
        let result = try await runPipeline(config: project)
        printProgress("demo: done in \(formatSeconds(Date().timeIntervalSince(started)))")
        print("report: \(result.reportPage.path)")
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
        try await withStudyStorage(url: storage) { store in
            var snapshots: [StudySnapshot] = []
            for name in study {
                let record = try await store.study(named: name)
                snapshots.append(StudySnapshot(record: record, trials: try await store.trials(studyID: record.id, states: nil)))
            }
            let page = try StudyReport(studies: snapshots).write(to: URL(fileURLWithPath: output))
            print(page.path)
        }
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
        try await withStudyStorage(url: location.storage) { storage in
            _ = try await storage.study(named: location.study)
            let dashboard = Dashboard(storage: storage, studyName: location.study, refreshSeconds: refresh)
            try await dashboard.serve(host: host, port: port) { bound in
                printProgress("dashboard of '\(location.study)' at http://\(host):\(bound)/ (Ctrl-C stops it)")
            }
        }
    }
}

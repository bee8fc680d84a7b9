import ArgumentParser
import Estimators
import Foundation
import Reports
import Search
import Storage
import Workflow

/// Options naming a study in a storage.
struct StudyLocation: ParsableArguments {
    @Option(help: "Study storage: sqlite:///path/study.db, postgresql://user:password@host:5432/db, or memory: (default: $EDGENAS_STORAGE).")
    var storage: String = ProcessInfo.processInfo.environment[ProjectConfig.storageEnvironmentVariable] ?? ""

    @Option(help: "Study name.")
    var study: String

    func validate() throws {
        guard !storage.isEmpty else {
            throw ValidationError("give the study storage with --storage or $\(ProjectConfig.storageEnvironmentVariable)")
        }
    }
}

/// Studies in a storage: create, list, show, export, delete.
struct StudyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "study", abstract: "Create, list, show, export and delete studies.",
        subcommands: [Create.self, List.self, Show.self, Export.self, Delete.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a study that workers then run.",
            discussion: """
            The search space is a YAML or JSON file, for example:
              parameters:
                kernel_size: {type: categorical, choices: [3, 5]}
                channels: {type: int, low: 24, high: 96, step: 8}
            The objective command gets the trial's parameters as JSON on stdin and in \
            EDGENAS_PARAMETERS and prints its values as its last line, e.g. {"values": [0.71, 4.2]}.
            """)

        @OptionGroup var location: StudyLocation

        @Option(help: "Search-space file (YAML or JSON).")
        var space: String

        @Option(help: "Objective directions, comma separated, e.g. maximize,minimize.")
        var directions: String

        @Option(help: "Complete trials the study wants.")
        var budget: Int

        @Option(help: "Sampler: \(SamplerCatalog.names.joined(separator: ", ")).")
        var sampler = "auto"

        @Option(help: "Seed of the sampler: the same seed proposes the same trials.")
        var seed: UInt64 = 0

        @Option(help: "Objective command run by the workers (optional; a worker can pass its own).")
        var command: String?

        @Option(help: "Seconds after which an objective command is stopped and its trial failed.")
        var commandTimeout: Double?

        @Option(help: "A first trial with fixed parameters, e.g. 'kernel_size=5,channels=96'.")
        var baseline: String?

        func run() async throws {
            let text = try String(contentsOfFile: space, encoding: .utf8)
            let searchSpace = space.hasSuffix(".json") ? try SearchSpace.decode(json: Data(text.utf8)) : try SearchSpace.decode(yaml: text)
            let studyDirections = try directions.split(separator: ",").map { name -> StudyDirection in
                guard let direction = StudyDirection(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--directions: '\(name)' is not minimize or maximize")
                }
                return direction
            }
            guard budget > 0 else { throw ValidationError("--budget must be positive") }
            try await withStudyStorage(url: location.storage) { storage in
                let settings = StudySettings(space: searchSpace, directions: studyDirections, budget: budget, samplerName: sampler,
                                             seed: seed, objectiveCommand: command, objectiveTimeoutSeconds: commandTimeout)
                let fixed = try baseline.map { try parseAssignment($0, space: searchSpace) }
                let record = try await StudyWorker.create(storage: storage, name: location.study, settings: settings, baseline: fixed)
                print("created study '\(record.name)' (id \(record.id)): \(budget) trials, sampler \(sampler), "
                      + "directions \(studyDirections.map(\.rawValue).joined(separator: ","))")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the studies of a storage.")

        @Option(help: "Study storage URL.")
        var storage: String

        func run() async throws {
            try await withStudyStorage(url: storage) { store in
                var table = Table(columns: ["study", "directions", "budget", "complete", "running", "failed", "created"])
                for record in try await store.studies() {
                    let trials = try await store.trials(studyID: record.id, states: nil)
                    func count(_ state: TrialState) -> String { String(trials.filter { $0.state == state }.count) }
                    table.rows.append([record.name, record.directions.map(\.rawValue).joined(separator: ","),
                                       record.attributes["budget"] ?? "-", count(.complete), count(.running), count(.failed),
                                       ISO8601DateFormatter().string(from: record.createdAt)])
                }
                print(table.rows.isEmpty ? "no studies in \(redactingPassword(in: storage))" : table.text, terminator: "")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a study's trials and its Pareto front.")

        @OptionGroup var location: StudyLocation

        func run() async throws {
            try await withStudyStorage(url: location.storage) { storage in
                let record = try await storage.study(named: location.study)
                let trials = try await storage.trials(studyID: record.id, states: nil)
                let table = StudyExport.table(record: record, trials: trials)
                print(Table(columns: table.columns, rows: table.rows).text)
                let complete = trials.filter { $0.state == .complete && $0.values != nil }
                let losses = complete.map { lossVector($0.values!, record.directions) }
                let front = Pareto.nonDominatedIndices(losses)
                print("Pareto front (\(front.count) of \(complete.count) complete trials): "
                      + front.map { String(complete[$0].number) }.sorted().joined(separator: ", "))
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a study's trials to CSV or JSON.")

        @OptionGroup var location: StudyLocation

        @Option(help: "Output file; .json writes JSON, anything else CSV.")
        var output: String

        func run() async throws {
            try await withStudyStorage(url: location.storage) { storage in
                let record = try await storage.study(named: location.study)
                let trials = try await storage.trials(studyID: record.id, states: nil)
                if output.hasSuffix(".json") {
                    try StudyExport.json(record: record, trials: trials).write(to: URL(fileURLWithPath: output))
                } else {
                    let table = StudyExport.table(record: record, trials: trials)
                    try Table(columns: table.columns, rows: table.rows).csv.write(toFile: output, atomically: true, encoding: .utf8)
                }
                print("wrote \(trials.count) trials of '\(record.name)' to \(output)")
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a study and its trials.")

        @OptionGroup var location: StudyLocation

        func run() async throws {
            try await withStudyStorage(url: location.storage) { storage in
                try await storage.deleteStudy(named: location.study)
                // A search's queued stages: a new study of the same name must not take their results.
                for queue in SearchPipeline.workQueueNames(study: location.study) {
                    do { try await storage.deleteStudy(named: queue) } catch StudyStorageError.studyNotFound {}
                }
                print("deleted study '\(location.study)'")
            }
        }
    }
}

/// `name=value,name=value` read against the space's parameter types.
func parseAssignment(_ text: String, space: SearchSpace) throws -> [String: ParameterValue] {
    var assignment: [String: ParameterValue] = [:]
    for pair in text.split(separator: ",") {
        let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2 else { throw ValidationError("'\(pair)' is not name=value") }
        if let integer = Int(parts[1]) {
            assignment[parts[0]] = .int(integer)
        } else if let number = Double(parts[1]) {
            assignment[parts[0]] = .double(number)
        } else {
            assignment[parts[0]] = .string(parts[1])
        }
        // A float parameter given as a whole number is still a float.
        if case .float = space[parts[0]]?.distribution, let value = assignment[parts[0]]?.numericValue {
            assignment[parts[0]] = .double(value)
        }
    }
    return assignment
}

/// A worker: runs trials of a study until its budget is met. Start any number of them, on
/// any number of machines, against the same storage.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: "Run trials of a study until its budget is met (any number of workers).",
        discussion: """
        With --config, the worker runs trials of the detector search that 'edgenas search --config' \
        (the same file) profiles, plans, retrains and reports: latency and estimate per trial, on \
        this machine. Otherwise it runs the objective command of a study made by 'edgenas study \
        create' (--storage, or $EDGENAS_STORAGE, and --study).
        """)

    @Option(help: "Project config of a detector search (as 'edgenas search --config').")
    var config: String?

    @Option(help: "Study storage (default: $EDGENAS_STORAGE); without --config.")
    var storage: String?

    @Option(help: "Study name; without --config.")
    var study: String?

    @Option(help: "Objective command (overrides the study's).")
    var command: String?

    @Option(help: "Seconds between heartbeats of the running trial.")
    var heartbeat = 5.0

    @Option(help: "Seconds without a heartbeat after which another worker's trial counts as dead.")
    var staleTimeout = 30.0

    @Option(help: "How often a dead worker's trial is re-queued.")
    var maxRetries = 1

    func validate() throws {
        if config != nil {
            guard storage == nil, study == nil, command == nil else {
                throw ValidationError("--config names the storage and the study itself; leave out --storage, --study and --command")
            }
        } else {
            guard resolvedStorage != nil, study != nil else {
                throw ValidationError("give --config, or the study's --storage (or $\(ProjectConfig.storageEnvironmentVariable)) and --study")
            }
        }
    }

    private var resolvedStorage: String? {
        storage ?? ProcessInfo.processInfo.environment[ProjectConfig.storageEnvironmentVariable].flatMap { $0.isEmpty ? nil : $0 }
    }

    func run() async throws {
        if let config { return try await runDetectorSearch(config: config) }
        let (storageURL, studyName) = (resolvedStorage!, study!)
        try await withStudyStorage(url: storageURL) { storage in
            var worker = StudyWorker(storage: storage, studyName: studyName)
            worker.heartbeatInterval = .milliseconds(Int(heartbeat * 1000))
            worker.staleTrialTimeout = staleTimeout
            worker.maxRetries = maxRetries
            let objective = command.map { command in
                let external = CommandObjective(command: command)
                return { @Sendable (trial: TrialHandle) async throws -> Evaluation in
                    try await external.evaluate(parameters: trial.parameters, trialNumber: trial.number)
                }
            }
            let started = Date()
            let ran = try await worker.run(objective: objective) { complete, budget in
                print("study '\(studyName)': \(complete)/\(budget) complete")
                fflush(nil)
            }
            print(String(format: "worker done: %d trials in %.1f s", ran, Date().timeIntervalSince(started)))
        }
    }

    /// Trials of a detector search, as `SearchPipeline.runWorker` runs them.
    private func runDetectorSearch(config path: String) async throws {
        let project = try ProjectConfig.load(path: path)
        let started = Date()
        let complete = try await withStudyStorage(url: project.storage) { storage in
            let splits = try DatasetSplits.load(project.dataset)
            let components = try PipelineComponents.standard(config: project, splits: splits)
            var pipeline = SearchPipeline(config: project, storage: storage, components: components, log: printProgress)
            pipeline.heartbeatInterval = .milliseconds(Int(heartbeat * 1000))
            pipeline.staleTrialTimeout = staleTimeout
            return try await pipeline.runWorker()
        }
        printProgress(String(format: "worker done in %@: study '%@' has %d complete trials", formatSeconds(Date().timeIntervalSince(started)),
                             project.name, complete))
    }
}


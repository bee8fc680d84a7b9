import Foundation
import Hardware
import Reports
import Search

/// A study and its trials as read from the storage at one moment.
public struct StudySnapshot: Sendable {
    public var record: StudyRecord
    public var trials: [FrozenTrial]

    public init(record: StudyRecord, trials: [FrozenTrial]) {
        self.record = record
        self.trials = trials
    }

    public var estimator: String { record.attributes[PipelineAttribute.estimator] ?? "unknown" }
    public var complete: [FrozenTrial] { trials.filter { $0.state == .complete && $0.values != nil } }
    public var baselineTrial: FrozenTrial? {
        record.attributes[PipelineAttribute.baselineTrial].flatMap(Int.init).flatMap { number in
            complete.first { $0.number == number }
        }
    }

    /// Full-training results of the candidates, by trial number.
    public var retrained: [Int: RetrainedResult] {
        var results: [Int: RetrainedResult] = [:]
        for (key, value) in record.attributes where key.hasPrefix(RetrainedResult.attributePrefix) {
            if let result = try? decodeJSONText(RetrainedResult.self, value) { results[result.trialNumber] = result }
        }
        return results
    }

    /// Whether the search values are full-training AP (no retraining was needed).
    public var searchIsFullFidelity: Bool { estimator == "full" }

    /// AP@0.5 a trial reached at the search's fidelity.
    func searchAP(_ trial: FrozenTrial) -> Double? {
        TrialRecord(trial)?.ap50 ?? (searchIsFullFidelity ? trial.values?[0] : nil)
    }

    func latency(_ trial: FrozenTrial) -> Double? {
        TrialRecord(trial)?.latencyMilliseconds
    }

    /// AP@0.5 after full training: the retrained value, or the search's when it trained fully.
    func fullAP(_ trial: FrozenTrial) -> Double? {
        retrained[trial.number]?.ap50 ?? (searchIsFullFidelity ? searchAP(trial) : nil)
    }

    /// The search's Pareto front (feasible trials first), as `Study.bestTrials` computes it.
    public var searchFront: [FrozenTrial] {
        let feasible = complete.filter(\.isFeasible)
        let pool = feasible.isEmpty ? complete : feasible
        return Pareto.nonDominatedIndices(pool.map { lossVector($0.values!, record.directions) }).map { pool[$0] }
    }

    /// Trials with a full-training AP and whether each is on the front of full AP vs latency
    /// (a repeated architecture once, as its first trial).
    public var chosen: [(trial: FrozenTrial, onFront: Bool)] {
        let candidates = complete.filter { fullAP($0) != nil && latency($0) != nil && TrialRecord($0)?.duplicateOf == nil }
        let losses = candidates.map { [-fullAP($0)!, latency($0)!] }
        let front = Set(Pareto.nonDominatedIndices(losses))
        return candidates.indices.map { (candidates[$0], front.contains($0)) }.sorted { latency($0.trial)! < latency($1.trial)! }
    }
}

public struct StudyReport: Sendable {
    public var studies: [StudySnapshot]

    public init(studies: [StudySnapshot]) {
        self.studies = studies
    }

    /// Writes `index.html`, `pareto.svg`, `profile.svg` (when a profile exists), `trials.csv`,
    /// `trials.json` and `chosen.csv` into `directory`; returns the page's URL.
    @discardableResult
    public func write(to directory: URL) throws -> URL {
        guard studies.contains(where: { !$0.complete.isEmpty }) else {
            throw PipelineError.noCompleteTrials(study: studies.map(\.record.name).joined(separator: ", "))
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        func save(_ text: String, _ name: String) throws {
            try text.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        let pareto = paretoPlot().svg()
        try save(pareto, "pareto.svg")
        let profile = profileChart()?.svg()
        if let profile { try save(profile, "profile.svg") }
        try save(trialsTable.csv, "trials.csv")
        try save(chosenTable.csv, "chosen.csv")
        try save(speedUpTable.csv, "speedup.csv")
        let documents = try studies.map { try JSONSerialization.jsonObject(with: StudyExport.json(record: $0.record, trials: $0.trials)) }
        try JSONSerialization.data(withJSONObject: documents.count == 1 ? documents[0] : documents, options: [.prettyPrinted, .sortedKeys])
            .write(to: directory.appendingPathComponent("trials.json"))

        var page = HTMLReport(title: "EdgeNAS report: " + studies.map(\.record.name).joined(separator: ", "))
        for study in studies {
            let attributes = study.record.attributes
            var summary = "Study '\(study.record.name)': \(study.complete.count) complete trials"
            let pruned = study.trials.filter { $0.state == .pruned }.count
            if pruned > 0 { summary += " and \(pruned) pruned" }
            if let base = attributes[PipelineAttribute.baseModel] { summary += ", base model \(base)" }
            if let dataset = attributes[PipelineAttribute.dataset] { summary += ", dataset \(dataset)" }
            if let backend = attributes[PipelineAttribute.latencyBackend] { summary += ", latency on \(backend)" }
            page.add(.paragraph(summary + "."))
            if let reason = attributes[PipelineAttribute.estimatorReason] {
                page.add(.paragraph("Estimator '\(study.estimator)': \(reason)."))
            }
            if let reason = attributes[PipelineAttribute.samplerReason] { page.add(.paragraph("Sampler: \(reason).")) }
        }
        if let profile {
            page.add(.heading("Layer profile"))
            page.add(.svg(profile))
        }
        if let ranking = rankingTable {
            page.add(.heading("Estimator ranking"))
            page.add(.table(ranking))
        }
        page.add(.heading("Speed-up"))
        page.add(.paragraph("Search time with each estimator against the same number of trials trained fully; "
                            + "hypervolume of AP@0.5 vs latency after full training (higher is better, same reference for all)."))
        page.add(.table(speedUpTable))
        page.add(.heading("Pareto front"))
        for study in studies where !study.complete.isEmpty && study.complete.allSatisfy({ study.searchAP($0) == nil }) {
            page.add(.paragraph("Study '\(study.record.name)' searched with \(study.estimator), which scores architectures without "
                                + "measuring AP@0.5; the plot shows its front after full training."))
        }
        page.add(.svg(pareto))
        page.add(.heading("Chosen architectures"))
        page.add(.paragraph("Architectures trained fully, with their change against the baseline; 'front' marks the Pareto-optimal ones."))
        page.add(.table(chosenTable))
        page.add(.heading("All trials"))
        page.add(.table(trialsTable))
        let url = directory.appendingPathComponent("index.html")
        try save(page.html, "index.html")
        return url
    }

    // MARK: parts

    func paretoPlot() -> ParetoPlot {
        var series: [ParetoPlot.Series] = []
        for study in studies {
            let prefix = studies.count > 1 ? "\(study.record.name): " : ""
            let points = study.complete.compactMap { trial -> ParetoPlot.Point? in
                guard let ap = study.searchAP(trial), let latency = study.latency(trial) else { return nil }
                return ParetoPlot.Point(x: latency, y: ap, label: "trial \(trial.number) \(TrialRecord(trial)?.architecture ?? "")")
            }
            // A proxy or predictor search measures no AP: only its retrained candidates are plotted.
            if !points.isEmpty { series.append(ParetoPlot.Series(name: prefix + "search (\(study.estimator))", points: points)) }
            let retrained = study.retrained
            if !retrained.isEmpty {
                let fullPoints = study.complete.compactMap { trial -> ParetoPlot.Point? in
                    guard let result = retrained[trial.number], let latency = study.latency(trial) else { return nil }
                    return ParetoPlot.Point(x: latency, y: result.ap50, label: "trial \(trial.number) \(result.architecture)")
                }
                series.append(ParetoPlot.Series(name: prefix + "full training", points: fullPoints))
            }
        }
        let baseline = studies.lazy.compactMap { study -> ParetoPlot.Point? in
            guard let trial = study.baselineTrial, let latency = study.latency(trial),
                  let ap = study.fullAP(trial) ?? study.searchAP(trial) else { return nil }
            return ParetoPlot.Point(x: latency, y: ap, label: TrialRecord(trial)?.architecture ?? "baseline")
        }.first
        return ParetoPlot(title: "AP@0.5 vs latency", xLabel: "latency (ms, median)", yLabel: "AP@0.5", series: series, baseline: baseline)
    }

    func profileChart() -> BarChart? {
        guard let json = studies.lazy.compactMap({ $0.record.attributes[PipelineAttribute.layerProfile] }).first,
              let profile = try? decodeJSONText(LayerProfileSummary.self, json), !profile.layers.isEmpty else { return nil }
        let total = profile.layers.reduce(0) { $0 + $1.milliseconds }
        let blocks = Array(Set(profile.layers.map(\.block))).sorted()
        let bars = profile.layers.sorted { $0.milliseconds > $1.milliseconds }.prefix(25).map { layer in
            BarChart.Bar(label: layer.name, value: layer.milliseconds,
                         annotation: String(format: "%.1f %%", 100 * layer.milliseconds / max(total, 1e-12)),
                         colorIndex: blocks.firstIndex(of: layer.block) ?? 0)
        }
        return BarChart(title: "Layer latency of \(profile.architecture) on \(profile.backend)", valueAxisLabel: "ms",
                        bars: Array(bars), legend: blocks.enumerated().map { ($1, $0) })
    }

    var rankingTable: Table? {
        let selections = studies.compactMap { study in
            study.record.attributes[PipelineAttribute.estimatorSelection]
                .flatMap { try? decodeJSONText(EstimatorSelectionSummary.self, $0) }
        }
        guard let selection = selections.first else { return nil }
        return Table(columns: ["rank", "estimator", "Kendall tau", "Spearman rho", "s / architecture", "chosen"],
                     rows: selection.rows.enumerated().map { index, row in
            [String(index + 1), row.name, String(format: "%.3f", row.kendallTau), String(format: "%.3f", row.spearmanRho),
             String(format: "%.2f", row.secondsPerArchitecture), row.name == selection.chosen ? "yes" : ""]
        })
    }

    /// The reference point shared by every study's hypervolume: latency 10 % beyond the
    /// slowest trial, AP 0.
    private var hypervolumeReference: [Double] {
        let slowest = studies.flatMap { study in study.complete.compactMap(study.latency) }.max() ?? 1
        return [0, slowest * 1.1]
    }

    var speedUpTable: Table {
        var table = Table(columns: ["study", "estimator", "complete trials", "search time", "s / trial", "full training s / trial",
                                    "same trials trained fully", "selection", "speed-up", "hypervolume (full AP)"])
        let reference = hypervolumeReference
        for study in studies {
            let attributes = study.record.attributes
            let durations = study.complete.compactMap { trial in
                zip([trial.startedAt], [trial.completedAt]).compactMap { start, end in
                    start.flatMap { s in end.map { $0.timeIntervalSince(s) } }
                }.first
            }
            let searchSeconds = Double(attributes[PipelineAttribute.searchSeconds] ?? "") ?? durations.reduce(0, +)
            let perTrial = durations.isEmpty ? .nan : durations.reduce(0, +) / Double(durations.count)
            let retrainSeconds = study.retrained.values.map(\.seconds)
            let fullPerTrial: Double = study.searchIsFullFidelity ? perTrial
                : !retrainSeconds.isEmpty ? retrainSeconds.reduce(0, +) / Double(retrainSeconds.count)
                : Double(attributes[PipelineAttribute.fullTrainingSeconds] ?? "") ?? .nan
            let fullSearch = fullPerTrial * Double(study.complete.count)
            let selection = Double(attributes[PipelineAttribute.selectionSeconds] ?? "") ?? 0
            let speedUp = fullSearch / (searchSeconds + selection)
            let points = study.chosen.map { [-study.fullAP($0.trial)!, study.latency($0.trial)!] }
            let volume = Pareto.hypervolume(points, reference: reference)
            table.rows.append([
                study.record.name, study.estimator, String(study.complete.count), formatSeconds(searchSeconds),
                String(format: "%.1f", perTrial), fullPerTrial.isFinite ? String(format: "%.1f", fullPerTrial) : "-",
                fullSearch.isFinite ? formatSeconds(fullSearch) : "-", selection > 0 ? formatSeconds(selection) : "-",
                speedUp.isFinite ? String(format: "%.1fx", speedUp) : "-", points.isEmpty ? "-" : String(format: "%.4f", volume),
            ])
        }
        return table
    }

    var chosenTable: Table {
        var table = Table(columns: ["study", "trial", "architecture", "latency ms", "latency change %", "AP@0.5", "AP@0.5 change",
                                    "AP@0.5 INT8", "params", "front"])
        for study in studies {
            let baseline = study.baselineTrial
            let baseLatency = baseline.flatMap(study.latency), baseAP = baseline.flatMap(study.fullAP)
            for (trial, onFront) in study.chosen {
                let latency = study.latency(trial)!, ap = study.fullAP(trial)!
                let isBaseline = trial.number == baseline?.number
                table.rows.append([
                    study.record.name, String(trial.number) + (isBaseline ? " (baseline)" : ""),
                    TrialRecord(trial)?.architecture ?? "", String(format: "%.3f", latency),
                    baseLatency.map { String(format: "%+.1f", 100 * (latency - $0) / $0) } ?? "-",
                    String(format: "%.4f", ap), baseAP.map { String(format: "%+.4f", ap - $0) } ?? "-",
                    study.retrained[trial.number]?.int8AP50.map { String(format: "%.4f", $0) } ?? "-",
                    TrialRecord(trial).map { String($0.parameters) } ?? "", onFront ? "yes" : "",
                ])
            }
        }
        return table
    }

    var trialsTable: Table {
        var table = Table(columns: ["study", "trial", "state", "architecture", "estimator", "score", "AP@0.5 (search)",
                                    "AP@0.5 (full)", "AP@0.5 INT8", "latency ms", "params", "memory MB", "seconds", "feasible"])
        for study in studies {
            for trial in study.trials.sorted(by: { $0.number < $1.number }) {
                let seconds = trial.startedAt.flatMap { start in trial.completedAt.map { $0.timeIntervalSince(start) } }
                table.rows.append([
                    study.record.name, String(trial.number), trial.state.rawValue, TrialRecord(trial)?.architecture ?? "",
                    TrialRecord(trial)?.estimator ?? "", trial.values.map { String(format: "%.4f", $0[0]) } ?? prunedScore(trial) ?? "",
                    study.searchAP(trial).map { String(format: "%.4f", $0) } ?? "",
                    study.retrained[trial.number].map { String(format: "%.4f", $0.ap50) } ?? "",
                    study.retrained[trial.number]?.int8AP50.map { String(format: "%.4f", $0) } ?? "",
                    study.latency(trial).map { String(format: "%.3f", $0) } ?? "", TrialRecord(trial).map { String($0.parameters) } ?? "",
                    TrialRecord(trial).map { String(format: "%.2f", $0.memoryMegabytes) } ?? "",
                    seconds.map { String(format: "%.1f", $0) } ?? "", trial.state == .complete ? (trial.isFeasible ? "yes" : "no") : "",
                ])
            }
        }
        return table
    }

    /// A pruned trial's AP@0.5 when its pruner stopped it, and after how many epochs.
    private func prunedScore(_ trial: FrozenTrial) -> String? {
        guard let record = TrialRecord(trial), let epochs = record.prunedAfterEpoch else { return nil }
        return String(format: "%.4f after %d epoch(s)", record.score, epochs)
    }
}

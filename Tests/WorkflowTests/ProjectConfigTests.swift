import Foundation
import Search
import Testing
import Vision
@testable import Workflow

private let base = URL(fileURLWithPath: "/projects/p")

/// A minimal valid config with one line replaced or added.
private func config(_ extra: String = "", dataset: String = "dataset: {path: data}", budget: String = "budget: {trials: 10}") -> String {
    [dataset, budget, extra].joined(separator: "\n")
}

private func parseError(_ yaml: String) -> ProjectConfigError? {
    do {
        _ = try ProjectConfig.parse(yaml: yaml, baseDirectory: base)
        return nil
    } catch {
        return error
    }
}

@Suite struct ProjectConfigTests {
    @Test func theExampleParsesToTheDocumentedDefaults() throws {
        let config = try ProjectConfig.parse(yaml: ProjectConfig.example, baseDirectory: base)
        #expect(config.name == "person-detector")
        #expect(config.dataset.format == .voc)
        #expect(config.dataset.path == "/projects/p/data")
        #expect(config.dataset.classes == ["person"])
        #expect(config.baseModel == DetectorArchitecture.baseline)
        #expect(config.searchSpace == ArchitectureSpace.defaultSpace)
        #expect(config.objectives == [.ap50, .latency])
        #expect(config.directions == [.maximize, .minimize])
        #expect(config.budget.trials == 30 && config.budget.hours == 4)
        #expect(config.estimator == "auto" && config.sampler == "auto" && config.pruner == .none)
        #expect(config.latency.backend == "int8" && config.latency.threads == 1)
        #expect(config.latency.deployedPrecision == .int8 && config.latency.deployedFormat == .onnx)
        #expect(config.storage == "sqlite:///projects/p/edgenas.db")
        #expect(config.training.epochs == 60 && config.training.shortEpochs == 5 && config.training.optimizer == .adamw)
        #expect(config.retrainCandidates == 5)
        #expect(config.output == "/projects/p/report")
    }

    @Test func theDefaultSpaceIsTheSeedsHeadSpace() {
        let space = ArchitectureSpace.defaultSpace
        #expect(space.names.sorted() == ["channels", "groups", "kernel", "width"])
        // 2 kernels x 4 group counts x 10 channel counts (24...96 by 8) x 4 widths.
        #expect(space.cardinality == .finite(2 * 4 * 10 * 4))
        // Every point builds a valid network: channels divide by every group count.
        for index in stride(from: 0, to: 320, by: 7) {
            #expect(throws: Never.self) { try ArchitectureSpace.architecture(space.gridPoint(at: index)!, base: .baseline) }
        }
        // One definition: the search space, the selection's references and the latency
        // predictor's samples (`DetectorHeadSpace.seed`) hold the same architectures.
        let members = (0..<320).map { try! ArchitectureSpace.architecture(space.gridPoint(at: $0)!, base: .baseline) }
        #expect(Set(members) == Set(try! DetectorHeadSpace.seed.allArchitectures()))
        #expect(PipelineComponents.headValues(of: space, base: .baseline) == DetectorHeadSpace.seed)
    }

    /// A landscape base model: a searched width keeps its aspect ratio, a searched height
    /// replaces it, and the base is still a point of the default space.
    @Test func aLandscapeBaseKeepsItsAspectUnlessTheHeightIsSearched() throws {
        let landscape = try DetectorArchitecture(shortName: "k5-g1-c96-w320-h240")
        let narrower = try ArchitectureSpace.architecture(["width": .int(256), "kernel": .int(3)], base: landscape)
        #expect(narrower.description == "k3-g1-c96-w256-h192")
        let searched = try ArchitectureSpace.architecture(["height": .int(160), "width": .int(288)], base: landscape)
        #expect((searched.inputWidth, searched.inputHeight) == (288, 160))
        #expect(ArchitectureSpace.Parameter.height.value(in: .baseline) == 320)
        let config = try ProjectConfig.parse(yaml: config("base_model: k5-g1-c96-w320-h240"), baseDirectory: base)
        #expect(config.baseModel.inputHeightPixels == 240)
    }

    @Test func aMinimalConfigTakesDefaults() throws {
        let config = try ProjectConfig.parse(yaml: config(), baseDirectory: base)
        #expect(config.budget.trials == 10 && config.budget.hours == nil)
        #expect(config.storage == "sqlite:///projects/p/edgenas.db")
        #expect(config.baseModel.classCount == 1)
    }

    @Test func errorsNameTheKeyAndTheExpectedValue() {
        #expect(parseError(config(budget: "budget: {trials: -3}"))
            == .invalidValue(key: "budget.trials", expected: "a positive integer", found: "'-3'"))
        #expect(parseError(config(budget: "budget: {hours: soon}"))
            == .invalidValue(key: "budget.hours", expected: "a number above 0", found: "'soon'"))
        #expect(parseError(config(budget: "budget: {}"))
            == .missingKey(key: "budget.trials", expected: "a positive number of trials, or budget.hours, or both"))
        #expect(parseError(config(dataset: "dataset: {format: pascal, path: d}"))
            == .invalidValue(key: "dataset.format", expected: "one of voc, yolo, coco", found: "'pascal'"))
        #expect(parseError(config(dataset: "dataset: {format: voc}"))
            == .missingKey(key: "dataset.path", expected: "the dataset's root directory"))
        #expect(parseError(config(dataset: "dataset: {format: coco, path: d}"))
            == .missingKey(key: "dataset.train_images", expected: "the split's image directory, relative to dataset.path (coco only)"))
        #expect(parseError(config("latency: {backend: int8, deployed_precision: int4}"))
            == .invalidValue(key: "latency.deployed_precision", expected: "int8 or fp32", found: "'int4'"))
        #expect(parseError(config("latency: {backend: int8, deployed_format: tfl}"))
            == .invalidValue(key: "latency.deployed_format", expected: "onnx or tflite", found: "'tfl'"))
        #expect(parseError(config("budjet: {trials: 3}"))
            == .unknownKey(key: "budjet", known: ["name", "dataset", "base_model", "search_space", "objectives", "constraints", "budget",
                                                  "estimator", "selection", "sampler", "pruner", "latency", "storage", "seed", "training",
                                                  "retrain", "output"]))
        #expect(parseError(config("training: {epochs: 10, batchsize: 4}"))
            == .unknownKey(key: "training.batchsize", known: ["epochs", "short_epochs", "batch_size", "learning_rate", "optimizer", "threads",
                                                              "init", "init_classes", "freeze_backbone_epochs"]))
        #expect(parseError(config("training: {epochs: 4, short_epochs: 5}"))
            == .invalidValue(key: "training.short_epochs", expected: "at most training.epochs (4)", found: "5"))
        #expect(parseError(config("estimator: oracle"))
            == .invalidValue(key: "estimator", expected: "auto, select, full, short, sotl, extrapolate, proxy:NAME (params, flops, synflow, snip, "
                             + "grasp, fisher, grad_norm, jacov, nwot, zen, epe_nas, l2_norm, plain), RULE@Eep (val_ap, sotl, sotl_last, "
                             + "val_loss, extrapolate_power_law; E in 1...59), or predictor:NAME (bayesian_ridge, ols, gp_rbf, "
                             + "random_forest, gbdt, knn, svr, mlp)", found: "'oracle'"))
        // A learning-curve strategy must stop before the full training ends.
        #expect(parseError(config("estimator: val_ap@60ep")) != nil)
        #expect(parseError(config("estimator: sotl_last@3ep")) == nil)
        #expect(parseError(config("estimator: predictor:ols\nselection: {references: 0}"))
            == .invalidValue(key: "selection.references", expected: "at least 4: estimator predictor:ols learns from the references",
                             found: "0"))
        #expect(parseError(config("estimator: select")) == nil)
        #expect(parseError(config("estimator: select\nselection: {references: 0}"))
            == .invalidValue(key: "selection.references", expected: "at least 4: estimator select learns from the references",
                             found: "0"))
        #expect(parseError(config("selection: {references: 3}"))
            == .invalidValue(key: "selection.references", expected: "0 (no selection) or at least 4", found: "3"))
        #expect(parseError(config("sampler: annealing"))
            == .invalidValue(key: "sampler", expected: "one of \(SamplerCatalog.names.joined(separator: ", "))", found: "'annealing'"))
        #expect(parseError(config("pruner: early"))
            == .invalidValue(key: "pruner", expected: "one of none, median, successive_halving, hyperband", found: "'early'"))
        #expect(parseError(config("pruner: {kind: hyperband, rungs: 3}"))
            == .unknownKey(key: "pruner.rungs", known: ["kind", "startup_trials", "min_epochs", "reduction_factor"]))
        #expect(parseError(config("pruner: {min_epochs: 2}"))
            == .missingKey(key: "pruner.kind", expected: "one of none, median, successive_halving, hyperband"))
        #expect(parseError(config("pruner: {kind: successive_halving, reduction_factor: 1}"))
            == .invalidValue(key: "pruner.reduction_factor", expected: "an integer >= 2", found: "'1'"))
        #expect(parseError(config("objectives: [latency, ap50]"))
            == .invalidValue(key: "objectives", expected: "ap50 and latency first (then optionally params, memory)", found: "[latency, ap50]"))
        #expect(parseError(config("objectives: [ap50, latency, flops]"))
            == .invalidValue(key: "objectives[2]", expected: "one of ap50, latency, params, memory", found: "'flops'"))
        #expect(parseError(config("constraints: {latency: {below: 3}}")) == .unknownKey(key: "constraints.latency.below", known: ["min", "max"]))
        #expect(parseError(config("constraints: {speed: {max: 3}}"))
            == .unknownKey(key: "constraints.speed", known: ["ap50", "latency", "params", "memory", "npu_fallback_ops"]))
        #expect(parseError(config("constraints: {npu_fallback_ops: 0}")) == .invalidValue(
            key: "constraints.npu_fallback_ops",
            expected: "latency.backend 'vela ACCELERATOR' (only an NPU compiler says which operators fall back to the CPU)",
            found: "latency.backend 'int8'"))
        #expect(parseError(config("constraints: {latency: none}"))
            == .invalidValue(key: "constraints.latency", expected: "a number", found: "'none'"))
        #expect(parseError(config("storage: mysql://db")) == .invalidValue(
            key: "storage", expected: "sqlite://path, postgresql://user:password@host:port/db, or memory:", found: "'mysql://db'"))
        guard case .invalidValue(let backendKey, _, _) = parseError(config("latency: {backend: tpu}")) else {
            Issue.record("an unknown latency backend was accepted")
            return
        }
        #expect(backendKey == "latency.backend")
        #expect(parseError(config("latency: {backend: 'agent http://127.0.0.1:8420'}")) == nil)
        #expect(parseError(config("seed: -1")) == .invalidValue(key: "seed", expected: "a non-negative integer", found: "'-1'"))
        #expect(parseError("- just\n- a list") == .invalidValue(key: "(document)", expected: "a mapping of keys to values", found: "a list"))
    }

    @Test func theBaseModelMustBeInTheSpace() {
        guard case .invalidValue(let key, _, let found) = parseError(config("base_model: k7-g1-c96-w320")) else {
            Issue.record("a kernel-7 base model outside the {3, 5} space was accepted")
            return
        }
        #expect(key == "base_model" && found == "'k7-g1-c96-w320'")
        guard case .invalidValue(let nameKey, _, _) = parseError(config("base_model: banana")) else {
            Issue.record("an unparsable base model was accepted")
            return
        }
        #expect(nameKey == "base_model")
    }

    @Test func inlineAndFileSpacesAreRead() throws {
        let inline = try ProjectConfig.parse(yaml: config("""
            base_model: k3-g2-c48-w256
            search_space:
              parameters:
                kernel: {type: categorical, choices: [3, 5]}
                channels: {type: int, low: 32, high: 64, step: 16}
            """), baseDirectory: base)
        #expect(inline.searchSpace.names.sorted() == ["channels", "kernel"])
        #expect(inline.searchSpaceSource == "inline")

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "parameters:\n  groups: {type: categorical, choices: [1, 2]}\n".write(
            to: directory.appendingPathComponent("space.yaml"), atomically: true, encoding: .utf8)
        let fromFile = try ProjectConfig.parse(yaml: config("search_space: space.yaml"), baseDirectory: directory)
        #expect(fromFile.searchSpace.names == ["groups"])

        #expect(parseError(config("""
            search_space:
              parameters:
                depth: {type: int, low: 1, high: 3}
            """)) == .invalidValue(key: "search_space.parameters.depth",
                                   expected: "a parameter of the architecture: kernel, groups, channels, width, height, neck, stem, spp, stage2_channels, stage3_channels, stage4_channels, stage2_repeats, stage3_repeats, stage4_repeats",
                                   found: "'depth'"))
    }

    @Test func constraintsBecomeFeasibilityValues() throws {
        let bounded = try ProjectConfig.parse(yaml: config("constraints: {latency: {max: 20}, ap50: {min: 0.5}}"), baseDirectory: base)
        let latency = try #require(bounded.constraints.first { $0.metric == .latency })
        #expect(latency.values(for: 25) == [5])      // 5 ms over the bound: infeasible
        #expect(latency.values(for: 18) == [-2])
        let ap = try #require(bounded.constraints.first { $0.metric == .ap50 })
        #expect(ap.values(for: 0.4) == [0.09999999999999998])

        // The NPU's fallback operators, a number as short for {max: N}, on the one backend that counts them.
        let npuYAML = [config(), "latency: {backend: vela ethos-u65-256}", "constraints: {npu_fallback_ops: 0}"].joined(separator: "\n")
        let npu = try ProjectConfig.parse(yaml: npuYAML, baseDirectory: base)
        #expect(npu.constraints == [SearchConstraint(metric: .npuFallbackOps, maximum: 0)])
    }
}

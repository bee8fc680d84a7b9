extension ProjectConfig {
    /// The commented config `edgenas init` writes. Every key is shown with its default.
    public static let example = """
    # EdgeNAS project. Paths are relative to this file. Run: edgenas search --config <this file>

    # Study name in the storage; rerunning the search with the same name continues it.
    name: person-detector

    dataset:
      format: voc                # voc | yolo | coco
      path: data                 # dataset root (edgenas data synth --output data makes one)
      train: train               # voc: ImageSets/Main/train.txt; yolo: images/train/; coco: annotation JSON
      val: val
      # train_images: images/train   # coco only: image directories of the splits
      # val_images: images/val
      classes: [person]

    # The architecture to improve on (see edgenas arch --help); it is the first trial.
    base_model: k5-g1-c96-w320

    # default: the head space (kernel {3,5}, groups {1,2,4,8}, channels 24..96 step 8,
    # input width 224..320 on the network's 32-pixel stride). Or a SearchSpace YAML file
    # (search_space: space.yaml, e.g. from 'edgenas suggest-space') or an inline mapping with
    # 'parameters:'. Parameters: kernel, groups, channels, width, neck, stem, spp,
    # stage2_channels, stage3_channels, stage4_channels, stage2_repeats, stage3_repeats, stage4_repeats.
    search_space: default

    # ap50 (maximised) and latency (minimised) first; params and memory are optional.
    objectives: [ap50, latency]

    # Bounds on measured quantities; trials outside them are infeasible.
    # constraints:
    #   latency: {max: 25}       # ms
    #   params: {max: 250000}

    budget:
      trials: 30                 # complete trials, the baseline included
      hours: 4                   # wall clock of the search phase (either or both)

    # auto: full training when the budget affords it; otherwise the two-stage selection below
    # trains its references fully, ranks every strategy by Kendall tau against their AP@0.5 and
    # searches with the best affordable one. select: that selection whatever the budget. Or
    # name one: full | short | sotl | extrapolate
    # (a short complete schedule of short_epochs) | RULE@Eep (the first E epochs of a full
    # training: val_ap, sotl, sotl_last, val_loss, extrapolate_power_law, e.g. val_ap@3ep;
    # with training.init, val_ap@0ep scores the inherited weights with no training at all) |
    # proxy:NAME (a zero-cost proxy, e.g. proxy:params, proxy:synflow) | predictor:NAME
    # (fitted on the selection's references, e.g. predictor:bayesian_ridge, predictor:gp_rbf).
    estimator: auto

    selection:
      references: 40             # architectures trained fully (the baseline first); 0: no selection
      max_cost_fraction: 0.25    # affordable: one evaluation costs at most this share of a full training
      folds: 5                   # cross-validation folds of the predictors
      resamples: 1000            # bootstrap resamples of the tau intervals

    # auto, random, grid, sobol, sobol-scrambled, tpe, tpe-multivariate, gp, nsga2
    sampler: auto

    # Stops trials whose AP@0.5 after a training epoch is poor against the trials at least as
    # fast (never the fastest so far): none, median, successive_halving, hyperband; or a mapping
    # {kind: median, startup_trials: 5, min_epochs: 1, reduction_factor: 3}. Only estimators
    # that train several epochs can be pruned (full, short, val_ap@Eep...).
    pruner: none

    latency:
      # int8 [ENGINE]: INT8 in this process (quantized kernels); fp32: eager FP32 here;
      # onnxruntime [int8|fp32]: the exported ONNX model in ONNX Runtime here (deployment runtime);
      # agent http://board:8420: a board running 'edgenas agent'; command 'bench {architecture}';
      # predictor latency.json: a fitted latency predictor; vela ethos-u65-256: Arm's Vela
      # estimate for the i.MX 93's NPU.
      backend: int8
      threads: 1
      # What an agent or a command's {model} gets: int8 (as boards deploy) or fp32, as onnx
      # (QDQ) or tflite (full-integer, for a board that runs LiteRT with its NPU delegate).
      deployed_precision: int8
      deployed_format: onnx

    storage: sqlite://edgenas.db # sqlite://relative.db, sqlite:///abs.db, postgresql://user:pw@host:5432/db
    seed: 0

    training:
      # Pretrained weights every network starts from (fine-tuning; omit to train from scratch):
      # FastestDet's published COCO detector, weights/weight_AP05:0.253207_280-epoch.pth in
      # github.com/dog-qiuqiu/FastestDet (its class list coco.names beside it), its ImageNet
      # backbone module/shufflenetv2.pth, torchvision's shufflenet_v2_x0_5, or an
      # 'edgenas train' checkpoint directory. Each architecture inherits what fits.
      # init: weights/fastestdet-coco-ap05-0.253.pth
      # init_classes: weights/coco.names   # default: the one *.names file beside init
      # freeze_backbone_epochs: 0          # epochs with the backbone frozen at the start
      epochs: 60                 # full training (estimator full, and the retraining of candidates)
      short_epochs: 5            # short-training estimators
      batch_size: 16
      # learning_rate: 0.01      # default 0.01 from scratch, 0.0003 when fine-tuning (init)
      optimizer: adamw           # adamw | sgd
      threads: 2

    retrain:
      candidates: 5              # Pareto candidates trained fully after a low-fidelity search

    output: report               # report directory (index.html, SVG, CSV, JSON)

    """
}

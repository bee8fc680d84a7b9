import CTorch

/// How a loss reduces its per-element values (at::Reduction).
public enum Reduction: Int32, Sendable, Hashable, Codable {
    case none = 0
    case mean = 1
    case sum = 2
}

/// Neural-network functions on tensors (like torch.nn.functional).
public enum Functional {
    private static func withPairs(
        _ a: (Int, Int), _ b: (Int, Int), _ c: (Int, Int),
        _ body: (UnsafePointer<Int64>, UnsafePointer<Int64>, UnsafePointer<Int64>) -> ctorch_tensor?
    ) throws -> Tensor {
        let first = [Int64(a.0), Int64(a.1)], second = [Int64(b.0), Int64(b.1)], third = [Int64(c.0), Int64(c.1)]
        return try Tensor.wrap(first.withUnsafeBufferPointer { p in
            second.withUnsafeBufferPointer { q in
                third.withUnsafeBufferPointer { r in body(p.baseAddress!, q.baseAddress!, r.baseAddress!) }
            }
        })
    }

    /// 2-D convolution of an NCHW input with an (out, in/groups, kH, kW) weight.
    /// `groups == in channels == out channels` gives a depthwise convolution.
    ///
    /// A pointwise (1×1, stride 1, no padding, one group) convolution runs as a batched matrix
    /// product W·X over the flattened pixels. Same mathematics; on CPU it is 2–3× faster for the
    /// small channel counts of edge detectors, because libtorch's oneDNN convolution converts
    /// NCHW activations to its blocked layout and back on every call, forward and backward.
    public static func conv2d(
        _ input: Tensor, weight: Tensor, bias: Tensor? = nil,
        stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1), groups: Int = 1
    ) throws -> Tensor {
        let weightShape = weight.shape
        if weightShape.count == 4, weightShape[2] == 1, weightShape[3] == 1, groups == 1,
           stride == (1, 1), padding == (0, 0), dilation == (1, 1), !input.isChannelsLast {
            let inputShape = input.shape
            if inputShape.count == 4, inputShape[1] == weightShape[1] {
                return try pointwiseConv2d(input, inputShape: inputShape, weight: weight, weightShape: weightShape, bias: bias)
            }
        }
        return try withPairs(stride, padding, dilation) {
            ctorch_conv2d(input.handle, weight.handle, bias?.handle, $0, $1, $2, Int64(groups))
        }
    }

    private static func pointwiseConv2d(
        _ input: Tensor, inputShape: [Int], weight: Tensor, weightShape: [Int], bias: Tensor?
    ) throws -> Tensor {
        let (batch, height, width) = (inputShape[0], inputShape[2], inputShape[3])
        let outChannels = weightShape[0]
        // reshape (not view): a channel slice of a larger tensor (ShuffleNet's split) still
        // flattens its pixels without copying, and anything else is copied as needed.
        let pixels = try input.reshape([batch, inputShape[1], height * width])
        var output = try weight.reshape([outChannels, weightShape[1]]).matmul(pixels)
        if let bias { output = try output + bias.reshape([outChannels, 1]) }
        return try output.view([batch, outChannels, height, width])
    }

    /// x Wᵀ + b.
    public static func linear(_ input: Tensor, weight: Tensor, bias: Tensor? = nil) throws -> Tensor {
        try Tensor.wrap(ctorch_linear(input.handle, weight.handle, bias?.handle))
    }

    /// Batch normalisation; in training mode batch statistics normalise the input and the
    /// running statistics are updated in place (running = (1 - momentum) running + momentum batch).
    public static func batchNorm(
        _ input: Tensor, weight: Tensor?, bias: Tensor?, runningMean: Tensor?, runningVar: Tensor?,
        training: Bool, momentum: Double = 0.1, eps: Double = 1e-5
    ) throws -> Tensor {
        try Tensor.wrap(ctorch_batch_norm(
            input.handle, weight?.handle, bias?.handle, runningMean?.handle, runningVar?.handle, training, momentum, eps))
    }

    public static func relu(_ input: Tensor) throws -> Tensor { try input.relu() }

    public static func maxPool2d(
        _ input: Tensor, kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0), ceilMode: Bool = false
    ) throws -> Tensor {
        try withPairs(kernel, stride ?? kernel, padding) { ctorch_max_pool2d(input.handle, $0, $1, $2, ceilMode) }
    }

    public static func avgPool2d(
        _ input: Tensor, kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0),
        ceilMode: Bool = false, countIncludePad: Bool = true
    ) throws -> Tensor {
        try withPairs(kernel, stride ?? kernel, padding) {
            ctorch_avg_pool2d(input.handle, $0, $1, $2, ceilMode, countIncludePad)
        }
    }

    public static func adaptiveAvgPool2d(_ input: Tensor, outputSize: (Int, Int)) throws -> Tensor {
        let size = [Int64(outputSize.0), Int64(outputSize.1)]
        return try Tensor.wrap(size.withUnsafeBufferPointer { ctorch_adaptive_avg_pool2d(input.handle, $0.baseAddress) })
    }

    /// Nearest-neighbour resize of an NCHW input to `size` (height, width).
    public static func upsampleNearest(_ input: Tensor, size: (Int, Int)) throws -> Tensor {
        let values = [Int64(size.0), Int64(size.1)]
        return try Tensor.wrap(values.withUnsafeBufferPointer { ctorch_upsample_nearest2d(input.handle, $0.baseAddress) })
    }

    /// Bilinear resize of an NCHW input to `size` (height, width), half-pixel centres
    /// (`align_corners=False`, PyTorch's default), without antialiasing.
    public static func resizeBilinear(_ input: Tensor, size: (Int, Int)) throws -> Tensor {
        let values = [Int64(size.0), Int64(size.1)]
        return try Tensor.wrap(values.withUnsafeBufferPointer { ctorch_upsample_bilinear2d(input.handle, $0.baseAddress) })
    }

    /// Nearest-neighbour upsampling by an integer factor.
    public static func upsampleNearest(_ input: Tensor, scale: Int) throws -> Tensor {
        let shape = input.shape
        guard shape.count == 4, scale > 0 else {
            throw TorchError(message: "upsampleNearest needs an NCHW input and a positive scale, got shape \(shape), scale \(scale)")
        }
        return try upsampleNearest(input, size: (shape[2] * scale, shape[3] * scale))
    }

    // MARK: losses

    public static func smoothL1Loss(_ input: Tensor, _ target: Tensor, reduction: Reduction = .mean, beta: Double = 1) throws -> Tensor {
        try Tensor.wrap(ctorch_smooth_l1_loss(input.handle, target.handle, reduction.rawValue, beta))
    }

    /// Binary cross-entropy of probabilities `input` against `target` in [0, 1].
    public static func binaryCrossEntropy(_ input: Tensor, _ target: Tensor, weight: Tensor? = nil, reduction: Reduction = .mean) throws -> Tensor {
        try Tensor.wrap(ctorch_binary_cross_entropy(input.handle, target.handle, weight?.handle, reduction.rawValue))
    }

    /// Binary cross-entropy of logits (numerically stable sigmoid + BCE).
    public static func binaryCrossEntropyWithLogits(
        _ input: Tensor, _ target: Tensor, weight: Tensor? = nil, positiveWeight: Tensor? = nil, reduction: Reduction = .mean
    ) throws -> Tensor {
        try Tensor.wrap(ctorch_binary_cross_entropy_with_logits(
            input.handle, target.handle, weight?.handle, positiveWeight?.handle, reduction.rawValue))
    }

    /// Negative log-likelihood of log-probabilities `input` (N, C) for int64 class `target` (N).
    public static func nllLoss(
        _ input: Tensor, _ target: Tensor, weight: Tensor? = nil, reduction: Reduction = .mean, ignoreIndex: Int = -100
    ) throws -> Tensor {
        try Tensor.wrap(ctorch_nll_loss(input.handle, target.handle, weight?.handle, reduction.rawValue, Int64(ignoreIndex)))
    }

    /// Cross-entropy of logits `input` (N, C) for int64 class `target` (N).
    public static func crossEntropy(
        _ input: Tensor, _ target: Tensor, weight: Tensor? = nil, reduction: Reduction = .mean,
        ignoreIndex: Int = -100, labelSmoothing: Double = 0
    ) throws -> Tensor {
        try Tensor.wrap(ctorch_cross_entropy(
            input.handle, target.handle, weight?.handle, reduction.rawValue, Int64(ignoreIndex), labelSmoothing))
    }
}

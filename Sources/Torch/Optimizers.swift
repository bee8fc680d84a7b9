import Foundation

/// Stochastic gradient descent with PyTorch 1.13's update rule (torch.optim.SGD):
///   d = g + weightDecay·p;  b = d (first step) or momentum·b + (1 − dampening)·d;
///   d = d + momentum·b (Nesterov) or b;  p = p − lr·d.
public final class SGD {
    public let parameters: [Tensor]
    public var learningRate: Double
    public let momentum: Double
    public let dampening: Double
    public let weightDecay: Double
    public let nesterov: Bool
    private var momentumBuffers: [Tensor?]

    public init(
        parameters: [Tensor], learningRate: Double, momentum: Double = 0, dampening: Double = 0,
        weightDecay: Double = 0, nesterov: Bool = false
    ) throws {
        guard learningRate >= 0, momentum >= 0, weightDecay >= 0 else {
            throw TorchError(message: "SGD: learning rate \(learningRate), momentum \(momentum), weight decay \(weightDecay) must be non-negative")
        }
        guard !nesterov || (momentum > 0 && dampening == 0) else {
            throw TorchError(message: "SGD: Nesterov momentum requires a momentum and zero dampening")
        }
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        momentumBuffers = Array(repeating: nil, count: parameters.count)
    }

    /// Updates every parameter that has a gradient.
    public func step() throws {
        try Torch.withNoGrad {
            for (index, parameter) in parameters.enumerated() {
                guard let grad = parameter.grad else { continue }
                var direction = weightDecay != 0 ? try grad + parameter * weightDecay : grad
                if momentum != 0 {
                    let buffer: Tensor
                    if let previous = momentumBuffers[index] {
                        buffer = try previous * momentum + direction * (1 - dampening)
                    } else {
                        buffer = try direction.clone()
                    }
                    momentumBuffers[index] = buffer
                    direction = nesterov ? try direction + buffer * momentum : buffer
                }
                try parameter.assign(parameter - direction * learningRate)
            }
        }
    }

    public func zeroGrad() throws {
        for parameter in parameters { try parameter.zeroGrad() }
    }
}

/// Adam with decoupled weight decay, PyTorch 1.13's update rule (torch.optim.AdamW, no amsgrad):
///   p = p·(1 − lr·wd);  m = β1·m + (1 − β1)·g;  v = β2·v + (1 − β2)·g²;
///   p = p − lr/(1 − β1ᵗ) · m / (sqrt(v)/sqrt(1 − β2ᵗ) + eps).
public final class AdamW {
    public let parameters: [Tensor]
    public var learningRate: Double
    public let beta1: Double
    public let beta2: Double
    public let eps: Double
    public let weightDecay: Double
    private var firstMoments: [Tensor?]
    private var secondMoments: [Tensor?]
    private var steps: [Int]

    public init(
        parameters: [Tensor], learningRate: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999),
        eps: Double = 1e-8, weightDecay: Double = 1e-2
    ) throws {
        guard learningRate >= 0, eps >= 0, weightDecay >= 0, (0..<1).contains(betas.0), (0..<1).contains(betas.1) else {
            throw TorchError(message: "AdamW: invalid hyper-parameters lr \(learningRate), betas \(betas), eps \(eps), weight decay \(weightDecay)")
        }
        self.parameters = parameters
        self.learningRate = learningRate
        beta1 = betas.0
        beta2 = betas.1
        self.eps = eps
        self.weightDecay = weightDecay
        firstMoments = Array(repeating: nil, count: parameters.count)
        secondMoments = Array(repeating: nil, count: parameters.count)
        steps = Array(repeating: 0, count: parameters.count)
    }

    /// Updates every parameter that has a gradient.
    public func step() throws {
        try Torch.withNoGrad {
            for (index, parameter) in parameters.enumerated() {
                guard let grad = parameter.grad else { continue }
                steps[index] += 1
                let step = Double(steps[index])
                let decayed = try parameter * (1 - learningRate * weightDecay)
                let m = try (firstMoments[index] ?? Tensor.zeros(parameter.shape)) * beta1 + grad * (1 - beta1)
                let v = try (secondMoments[index] ?? Tensor.zeros(parameter.shape)) * beta2 + (grad * grad) * (1 - beta2)
                firstMoments[index] = m
                secondMoments[index] = v
                let biasCorrection1 = 1 - Foundation.pow(beta1, step)
                let biasCorrection2 = 1 - Foundation.pow(beta2, step)
                let denominator = try v.sqrt() / biasCorrection2.squareRoot() + eps
                try parameter.assign(decayed - (m / denominator) * (learningRate / biasCorrection1))
            }
        }
    }

    public func zeroGrad() throws {
        for parameter in parameters { try parameter.zeroGrad() }
    }
}

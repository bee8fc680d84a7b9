/// Minimises a smooth function inside a box by projected L-BFGS: the quasi-Newton
/// direction of the two-loop recursion over the last `memory` steps, restricted to the
/// coordinates not held at a bound by the gradient, then a backtracking (Armijo) line
/// search on the path projected onto the box. A small stand-in for L-BFGS-B, enough for
/// a few dozen well-scaled variables such as a GP's log hyperparameters.
///
/// `objective` returns the value and gradient, or nil where it is undefined (a step there
/// is shortened). Returns the best point found; `start` is projected first. Stops after
/// `iterations` steps, when the projected gradient vanishes, or when a step no longer
/// lowers the value measurably.
func minimiseInBox(_ objective: ([Double]) -> (value: Double, gradient: [Double])?, from start: [Double],
                   lower: [Double], upper: [Double], iterations: Int, memory: Int = 8) -> [Double] {
    let count = start.count
    func project(_ x: [Double]) -> [Double] { (0..<count).map { min(max(x[$0], lower[$0]), upper[$0]) } }
    func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

    var x = project(start)
    guard var current = objective(x) else { return x }
    var steps: [(s: [Double], y: [Double], rho: Double)] = []
    for iteration in 0..<max(0, iterations) {
        // A coordinate on a bound whose gradient points out of the box stays there.
        let free = (0..<count).map { d in
            !((x[d] <= lower[d] && current.gradient[d] > 0) || (x[d] >= upper[d] && current.gradient[d] < 0))
        }
        let gradient = (0..<count).map { free[$0] ? current.gradient[$0] : 0 }
        if gradient.map(abs).max() ?? 0 < 1e-6 { break }

        // Two-loop recursion: direction = -H gradient, H the L-BFGS inverse Hessian.
        var q = gradient
        var alphas = [Double](repeating: 0, count: steps.count)
        for k in steps.indices.reversed() {
            alphas[k] = steps[k].rho * dot(steps[k].s, q)
            for d in 0..<count { q[d] -= alphas[k] * steps[k].y[d] }
        }
        if let last = steps.last { // initial scaling s^T y / y^T y
            let scale = dot(last.s, last.y) / dot(last.y, last.y)
            for d in 0..<count { q[d] *= scale }
        }
        for k in steps.indices {
            let beta = steps[k].rho * dot(steps[k].y, q)
            for d in 0..<count { q[d] += (alphas[k] - beta) * steps[k].s[d] }
        }
        var direction = (0..<count).map { free[$0] ? -q[$0] : 0 }
        if dot(direction, gradient) >= 0 { // not a descent direction: start the memory afresh
            steps.removeAll()
            direction = gradient.map { -$0 }
        }
        // The first step, without curvature information, moves at most one unit.
        let firstScale = steps.isEmpty ? min(1, 1 / (direction.map(abs).max() ?? 1)) : 1

        var t = firstScale
        var accepted: (x: [Double], result: (value: Double, gradient: [Double]))?
        for _ in 0..<30 {
            let candidate = project((0..<count).map { x[$0] + t * direction[$0] })
            if let result = objective(candidate),
               result.value <= current.value + 1e-4 * dot(current.gradient, (0..<count).map { candidate[$0] - x[$0] }) {
                accepted = (candidate, result)
                break
            }
            t *= 0.5
        }
        guard let next = accepted else { break }
        let s = (0..<count).map { next.x[$0] - x[$0] }
        let y = (0..<count).map { next.result.gradient[$0] - current.gradient[$0] }
        let curvature = dot(s, y)
        if curvature > 1e-10 {
            steps.append((s, y, 1 / curvature))
            if steps.count > memory { steps.removeFirst() }
        }
        let decrease = current.value - next.result.value
        x = next.x
        current = next.result
        if iteration > 0 && decrease <= 1e-9 * max(1, abs(current.value)) { break }
    }
    return x
}

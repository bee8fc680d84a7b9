import ArgumentParser

/// Options that must be positive: a clear usage error instead of a precondition deep inside
/// (a batch of 0 images, 0 epochs).
func requirePositive(_ values: KeyValuePairs<String, Int>) throws {
    for (option, value) in values where value < 1 {
        throw ValidationError("--\(option) must be at least 1, got \(value)")
    }
}

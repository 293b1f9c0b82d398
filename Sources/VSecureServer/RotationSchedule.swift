import Logging
import ServiceLifecycle
import VSecureCore

/// `serve --rotation-interval`: a service beside the HTTP server that rotates due secrets every
/// interval. Hummingbird shuts services down in reverse order, so this one stops after the HTTP
/// server has drained; a rotation in progress is finished (its transaction committed), then
/// the loop ends.
public struct RotationSchedule: Service {
    let rotator: SecretRotator
    let intervalSeconds: Int64
    let logger: Logger

    public init(rotator: SecretRotator, intervalSeconds: Int64, logger: Logger) {
        self.rotator = rotator
        self.intervalSeconds = intervalSeconds
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                _ = await rotator.rotateDue(logger: logger)
                do { try await Task.sleep(for: .seconds(intervalSeconds)) } catch { return }
            }
        }
    }
}

import VSecureCore

/// One secret's rotation policy and record, for the server's secret responses.
extension LocalVault {
    /// The policy and record of a live secret, or nil when it has none (or the vault is a
    /// format-1 vault read without migrating, which has no rotation table).
    public func rotation(secretID: String) throws(VSecureError) -> (RotationPolicy, RotationRecord)? {
        guard formatVersion >= 2, let row = try rotationRow(secretID: secretID) else { return nil }
        return (row.policy, row.record)
    }
}

import VSecureCore

/// Swift Testing also exports a `Tag`; in this module the name means the vault's tag.
typealias Tag = VSecureCore.Tag

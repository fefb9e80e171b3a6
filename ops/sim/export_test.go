package sim

// CommandKindForTest exposes commandKind to the external tests.
var CommandKindForTest = commandKind

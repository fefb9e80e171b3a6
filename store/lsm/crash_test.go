package lsm

func crashChild() bool { return false }

package vpiv

// SetQuickAckForTest turns the TCP_QUICKACK latency fix off or on for cards
// started afterwards, so a benchmark can measure its effect; it returns a
// function restoring the previous setting.
func SetQuickAckForTest(on bool) (restore func()) {
	prev := quickAckEnabled
	quickAckEnabled = on
	return func() { quickAckEnabled = prev }
}

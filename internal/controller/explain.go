package controller

// Explain is the Ready reason and message the operator would report for err, for tools that check what the
// operator checks (kubectl certops check-connection) and should say it in the same words.
func Explain(err error) (reason, message string) {
	f := classify(err)
	return f.reason, f.message
}

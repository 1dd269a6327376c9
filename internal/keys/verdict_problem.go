package keys

// SecretProblem says why the secret is unusable and what hbbs does with
// such a file: it exits on some, and starts on others while enforcing
// nothing, which looks like a working server. "" for a valid secret.
func (s State) SecretProblem() string {
	if s.SecretErr == nil {
		return ""
	}
	msg := s.SecretErr.Error()
	if c := s.Verdict.Consequence(); c != "" {
		msg += "; " + c
	}
	return msg
}

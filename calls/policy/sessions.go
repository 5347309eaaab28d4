package policy

// SessionsFor returns the cap on the open sessions of the principal named
// user (as Verify gave it): its MaxSessions, or 0, no cap of its own, for
// a name not in the tokens in use. It has the shape of
// mcp.HTTPOptions.SessionsFor.
func (s *Store) SessionsFor(user string) int {
	if p, ok := s.Principal(user); ok {
		return p.MaxSessions
	}
	return 0
}

package plan

// Func is a step made of functions, for changes that have no step type of
// their own (a transaction in another package, a D-Bus call). The functions
// capture what they need, context included.
type Func struct {
	Verb   string // Action
	Object string // Target
	// Check reports whether Do would change anything. It must not change
	// anything, and it must fail where Do would fail for a reason known in
	// advance (nothing staged, no key), so that a dry run fails too. Nil
	// means Do always changes something.
	Check func() (bool, error)
	// Do makes the change and reports whether it did.
	Do func() (bool, error)
	// From and To describe the target before and after, for output; Do
	// may update To with what it made.
	From, To string
}

func (f *Func) Action() string { return f.Verb }
func (f *Func) Target() string { return f.Object }

func (f *Func) Pending() (bool, error) {
	if f.Check == nil {
		return true, nil
	}
	return f.Check()
}

func (f *Func) Apply() (bool, error) { return f.Do() }

func (f *Func) Detail() (before, after string) { return f.From, f.To }

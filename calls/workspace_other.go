//go:build !unix

package calls

// openNoBlock has no meaning where there are no FIFOs to wait on.
const openNoBlock = 0

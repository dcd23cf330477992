package synchro

// Operation represents the type of change in a sync operation.
//
// The numeric values are stored in synchro.changelog and never change; the
// strings returned by String are the wire form used in push requests.
type Operation int

// The three operations. Their values are part of the storage format.
const (
	OpInsert Operation = 1
	OpUpdate Operation = 2
	OpDelete Operation = 3
)

// String returns the wire name of the operation: "create", "update" or
// "delete", and "unknown" for any other value.
func (o Operation) String() string {
	switch o {
	case OpInsert:
		return "create"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
	default:
		return "unknown"
	}
}

// ParseOperation converts a string to an Operation.
//
// It is the inverse of String for the three known operations and accepts only
// their exact lowercase wire names; anything else reports false.
func ParseOperation(s string) (Operation, bool) {
	switch s {
	case "create":
		return OpInsert, true
	case "update":
		return OpUpdate, true
	case "delete":
		return OpDelete, true
	default:
		return 0, false
	}
}

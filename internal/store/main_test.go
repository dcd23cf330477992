package store

import (
	"testing"

	"github.com/synchrosync/synchro/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

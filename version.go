package synchro

import (
	"errors"
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// CheckVersion returns ErrUpgradeRequired if clientVersion < minVersion.
//
// Both strings are semantic versions; a leading "v" is accepted and missing
// minor or patch parts count as zero ("1.2" is 1.2.0). Pre-releases order
// below their release as semver says, so "1.0.0-beta" is older than "1.0.0";
// build metadata ("+build.5") is ignored. An empty minVersion means there is
// no minimum and every client passes. An empty or unparsable clientVersion
// (when a minimum is set), or an unparsable minVersion, is an error that names
// the bad string and does not wrap ErrUpgradeRequired.
func CheckVersion(clientVersion, minVersion string) error {
	if strings.TrimSpace(minVersion) == "" {
		return nil
	}
	minimum, err := semver.NewVersion(strings.TrimSpace(minVersion))
	if err != nil {
		return fmt.Errorf("synchro: invalid minimum version %q: %w", minVersion, err)
	}
	if strings.TrimSpace(clientVersion) == "" {
		return fmt.Errorf("synchro: missing client version (minimum is %s)", minVersion)
	}
	client, err := semver.NewVersion(strings.TrimSpace(clientVersion))
	if err != nil {
		return fmt.Errorf("synchro: invalid client version %q: %w", clientVersion, err)
	}
	if client.LessThan(minimum) {
		return fmt.Errorf("%w: client version %s is below minimum %s", ErrUpgradeRequired, clientVersion, minVersion)
	}
	return nil
}

// MinClientVersion returns Config.MinClientVersion as the engine was built
// with: the oldest app version it serves, or "" when there is no minimum.
func (e *Engine) MinClientVersion() string {
	return e.minVersion
}

// CheckAppVersion checks an app version, such as the one a device sends with
// each request, against Config.MinClientVersion, as RegisterClient checks
// the app version of a registration: with no minimum every version passes
// (nil, whatever appVersion is); otherwise an app version below the minimum,
// empty or not a semantic version (see CheckVersion) is refused with an
// error wrapping ErrUpgradeRequired. It reads no database and calls no hook.
func (e *Engine) CheckAppVersion(appVersion string) error {
	if e.minVersion == "" {
		return nil
	}
	err := CheckVersion(appVersion, e.minVersion)
	if err != nil && !errors.Is(err, ErrUpgradeRequired) {
		err = fmt.Errorf("%w: %w", ErrUpgradeRequired, err)
	}
	return err
}

package applecert

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"strings"
)

// Profile is a kind of Apple code-signing certificate, recognised by its extended
// key usages and Apple leaf extensions. Names follow rcodesign's --profile values.
type Profile int

const (
	// ProfileUnknown: no Apple code-signing markers (a plain certificate).
	ProfileUnknown Profile = iota
	// ProfileDeveloperIDApplication signs software distributed outside the App
	// Store (what notarization needs).
	ProfileDeveloperIDApplication
	// ProfileDeveloperIDInstaller signs installer packages distributed outside the
	// App Store.
	ProfileDeveloperIDInstaller
	// ProfileAppleDevelopment signs development builds.
	ProfileAppleDevelopment
	// ProfileAppleDistribution signs App Store submissions.
	ProfileAppleDistribution
	// ProfileMacInstallerDistribution signs Mac App Store installer packages
	// ("3rd Party Mac Developer Installer").
	ProfileMacInstallerDistribution
	// ProfileMacDeveloper is the legacy "Mac Developer" development certificate.
	ProfileMacDeveloper
)

type profileInfo struct {
	name, title, cnPrefix string
	// ekus are the extended key usages; leafExts the Apple leaf extensions
	// (critical, value NULL), as Apple issues them.
	ekus     []asn1.ObjectIdentifier
	leafExts []asn1.ObjectIdentifier
}

var profiles = map[Profile]profileInfo{
	ProfileDeveloperIDApplication: {"developer-id-application", "Developer ID Application", "Developer ID Application",
		[]asn1.ObjectIdentifier{OIDEKUCodeSigning}, []asn1.ObjectIdentifier{OIDExtDeveloperIDApplication}},
	ProfileDeveloperIDInstaller: {"developer-id-installer", "Developer ID Installer", "Developer ID Installer",
		[]asn1.ObjectIdentifier{OIDEKUDeveloperIDInstaller}, []asn1.ObjectIdentifier{OIDExtDeveloperIDInstaller}},
	ProfileAppleDevelopment: {"apple-development", "Apple Development", "Apple Development",
		[]asn1.ObjectIdentifier{OIDEKUCodeSigning}, []asn1.ObjectIdentifier{OIDExtIPhoneDeveloper, OIDExtMacDeveloper}},
	ProfileAppleDistribution: {"apple-distribution", "Apple Distribution", "Apple Distribution",
		[]asn1.ObjectIdentifier{OIDEKUCodeSigning}, []asn1.ObjectIdentifier{OIDExtMacAppSigningDevelopment, OIDExtDeveloperCertificateSubmission}},
	ProfileMacInstallerDistribution: {"mac-installer-distribution", "Mac Installer Distribution", "3rd Party Mac Developer Installer",
		[]asn1.ObjectIdentifier{OIDEKUThirdPartyMacDeveloperInstaller}, []asn1.ObjectIdentifier{OIDExtMacAppSigningSubmission}},
	ProfileMacDeveloper: {"mac-developer", "Mac Developer", "Mac Developer",
		[]asn1.ObjectIdentifier{OIDEKUCodeSigning}, []asn1.ObjectIdentifier{OIDExtMacDeveloper}},
}

// Profiles lists the profiles GenerateSelfSigned can create, in a stable order.
func Profiles() []Profile {
	return []Profile{ProfileDeveloperIDApplication, ProfileDeveloperIDInstaller, ProfileAppleDevelopment,
		ProfileAppleDistribution, ProfileMacInstallerDistribution, ProfileMacDeveloper}
}

// String returns the profile's flag value, e.g. "developer-id-application".
func (p Profile) String() string {
	if i, ok := profiles[p]; ok {
		return i.name
	}
	return "unknown"
}

// Title returns the human name, e.g. "Developer ID Application".
func (p Profile) Title() string {
	if i, ok := profiles[p]; ok {
		return i.title
	}
	return "no Apple code-signing profile"
}

// ParseProfile parses a profile flag value (see Profiles and String).
func ParseProfile(s string) (Profile, error) {
	for _, p := range Profiles() {
		if p.String() == s {
			return p, nil
		}
	}
	names := make([]string, 0, len(profiles))
	for _, p := range Profiles() {
		names = append(names, p.String())
	}
	return ProfileUnknown, fmt.Errorf("unknown certificate profile %q (want one of %s)", s, strings.Join(names, ", "))
}

// GuessProfile guesses a certificate's profile from its extended key usages and Apple
// leaf extensions, the way rcodesign does: installer EKUs first, then the leaf
// extensions. ProfileUnknown means no Apple markers were found.
func GuessProfile(cert *x509.Certificate) Profile {
	if cert == nil {
		return ProfileUnknown
	}
	switch {
	case hasEKU(cert, OIDEKUDeveloperIDInstaller):
		return ProfileDeveloperIDInstaller
	case hasEKU(cert, OIDEKUThirdPartyMacDeveloperInstaller):
		return ProfileMacInstallerDistribution
	case HasExtension(cert, OIDExtDeveloperIDApplication):
		return ProfileDeveloperIDApplication
	case HasExtension(cert, OIDExtIPhoneDeveloper) && HasExtension(cert, OIDExtMacDeveloper):
		return ProfileAppleDevelopment
	case HasExtension(cert, OIDExtMacAppSigningDevelopment) && HasExtension(cert, OIDExtDeveloperCertificateSubmission):
		return ProfileAppleDistribution
	case HasExtension(cert, OIDExtMacDeveloper):
		return ProfileMacDeveloper
	}
	return ProfileUnknown
}

// HasExtension reports whether cert carries an extension with the given OID.
func HasExtension(cert *x509.Certificate, oid asn1.ObjectIdentifier) bool {
	for _, e := range cert.Extensions {
		if e.Id.Equal(oid) {
			return true
		}
	}
	return false
}

func hasEKU(cert *x509.Certificate, oid asn1.ObjectIdentifier) bool {
	if oid.Equal(OIDEKUCodeSigning) {
		for _, u := range cert.ExtKeyUsage {
			if u == x509.ExtKeyUsageCodeSigning {
				return true
			}
		}
	}
	for _, u := range cert.UnknownExtKeyUsage {
		if u.Equal(oid) {
			return true
		}
	}
	return false
}

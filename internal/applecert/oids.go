package applecert

import "encoding/asn1"

// Apple's certificate extension and usage identifiers (arc 1.2.840.113635.100).
// Leaf extensions (6.1.*) mark what a code-signing certificate may sign; CA
// extensions (6.2.*) mark which Apple CA issued it, and designated requirements test
// for them ("certificate 1[field.1.2.840.113635.100.6.2.6] exists").
var (
	// OIDAppleLeafArc is the arc of the code-signing leaf extensions (6.1.*).
	OIDAppleLeafArc = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 1}
	// OIDAppleCAArc is the arc of Apple's CA marker extensions (6.2.*).
	OIDAppleCAArc = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 2}

	OIDExtAppleSigning                   = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 1, 1}
	OIDExtIPhoneDeveloper                = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 1, 2}
	OIDExtIPhoneOSApplicationSigning     = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 1, 3}
	OIDExtDeveloperCertificateSubmission = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 1, 4}
	OIDExtSafariDeveloper                = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 1, 5}
	OIDExtMacAppSigningDevelopment       = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 1, 7}
	OIDExtMacAppSigningSubmission        = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 1, 8}
	OIDExtMacAppStoreCodeSigning         = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 1, 9}
	OIDExtMacAppStoreInstallerSigning    = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 1, 10}
	OIDExtMacDeveloper                   = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 1, 12}
	// OIDExtDeveloperIDApplication is critical in Developer ID Application leaves;
	// crypto/x509 refuses such certificates until it is marked handled.
	OIDExtDeveloperIDApplication = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 1, 13}
	OIDExtDeveloperIDInstaller   = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 1, 14}
	OIDExtDeveloperIDKernel      = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 1, 18}
	OIDExtDeveloperIDDate        = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 1, 33}

	// OIDCAWWDR marks the Apple Worldwide Developer Relations CAs (Apple
	// Development / Apple Distribution leaves).
	OIDCAWWDR = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 2, 1}
	// OIDCADeveloperID marks the Developer ID CAs.
	OIDCADeveloperID = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 2, 6}
	// OIDCATimestamp marks the Apple Timestamp CA.
	OIDCATimestamp = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 2, 9}
	// OIDCAWWDRG2 marks the WWDR G2 CA (issued by Apple Root CA - G3).
	OIDCAWWDRG2 = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 2, 15}

	// Extended key usages Apple defines next to codeSigning (1.3.6.1.5.5.7.3.3).
	OIDEKUSafariDeveloper                 = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 4, 8}
	OIDEKUThirdPartyMacDeveloperInstaller = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 4, 9}
	OIDEKUDeveloperIDInstaller            = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 4, 13}
	OIDEKUCodeSigning                     = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 3}

	// OIDUserID is the subject attribute (UID) Apple puts first in leaf subjects.
	OIDUserID = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
)

// IsAppleExtension reports whether oid is one of Apple's certificate marker
// extensions (1.2.840.113635.100.6.*). Apple marks some of them critical; code-signing
// verification treats them as understood, as Apple's own verifier does.
func IsAppleExtension(oid asn1.ObjectIdentifier) bool {
	return hasPrefix(oid, asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6})
}

func hasPrefix(oid, prefix asn1.ObjectIdentifier) bool {
	if len(oid) <= len(prefix) {
		return false
	}
	for i := range prefix {
		if oid[i] != prefix[i] {
			return false
		}
	}
	return true
}

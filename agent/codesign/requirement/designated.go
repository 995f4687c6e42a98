package requirement

// SignerKind classifies a signing certificate for the default designated
// requirement.
type SignerKind int

const (
	// SignerNonApple is a certificate that does not chain to an Apple root
	// (self-signed or from a private CA).
	SignerNonApple SignerKind = iota
	// SignerDeveloperID is issued by a CA carrying the Developer ID extension
	// (1.2.840.113635.100.6.2.6).
	SignerDeveloperID
	// SignerWWDR is issued by an Apple Worldwide Developer Relations CA
	// (1.2.840.113635.100.6.2.1): Apple Development and Apple Distribution.
	SignerWWDR
	// SignerOtherApple chains to an Apple root through some other CA.
	SignerOtherApple
)

// OIDs used by the default designated requirements.
const (
	OIDDeveloperIDCA          = "1.2.840.113635.100.6.2.6"
	OIDWWDRCA                 = "1.2.840.113635.100.6.2.1"
	OIDDeveloperIDApplication = "1.2.840.113635.100.6.1.13"
)

// Signer holds the certificate facts the default designated requirement depends on.
type Signer struct {
	Kind SignerKind
	// TeamID is the leaf's subject OU (Developer ID).
	TeamID string
	// CommonName is the leaf's subject CN (WWDR).
	CommonName string
	// PinSlot and PinSHA1 pin a non-Apple chain: the certificate position and the
	// SHA-1 of that certificate's DER.
	PinSlot int32
	PinSHA1 []byte
}

// Designated builds the default designated requirement codesign and rcodesign
// derive for a signing certificate: identifier "<id>" and X, with X by signer kind
//
//	Developer ID: anchor apple generic and certificate 1[field.<Developer ID CA>] exists
//	              and certificate leaf[field.<Developer ID Application>] exists
//	              and certificate leaf[subject.OU] = "<team>"
//	WWDR:         anchor apple generic and certificate leaf[subject.CN] = "<CN>"
//	              and certificate 1[field.<WWDR CA>] exists
//	other Apple:  anchor apple
//	non-Apple:    certificate <slot> = H"<sha1>"
func Designated(identifier string, s Signer) *Expr {
	var x *Expr
	switch s.Kind {
	case SignerDeveloperID:
		ca, _ := CertificateExtension(1, OIDDeveloperIDCA, Exists())
		leaf, _ := CertificateExtension(SlotLeaf, OIDDeveloperIDApplication, Exists())
		x = And(AnchorAppleGeneric(), ca, leaf, CertificateField(SlotLeaf, "subject.OU", Equal(s.TeamID)))
	case SignerWWDR:
		ca, _ := CertificateExtension(1, OIDWWDRCA, Exists())
		x = And(AnchorAppleGeneric(), CertificateField(SlotLeaf, "subject.CN", Equal(s.CommonName)), ca)
	case SignerOtherApple:
		x = AnchorApple()
	default:
		x = CertificateHash(s.PinSlot, s.PinSHA1)
	}
	return And(Identifier(identifier), x)
}

// DesignatedSet wraps a designated requirement expression in a RequirementSet.
func DesignatedSet(e *Expr) *Set {
	return &Set{Entries: []SetEntry{{Type: TypeDesignated, Requirement: &Requirement{Kind: KindExpression, Expr: e}}}}
}

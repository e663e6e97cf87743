// Package pkb speaks the part of Patients Know Best's API that Rebook uses
// (../shared/pkb-api.md): OAuth 2.0 with scope CLINICIAN, the messages REST
// API and the Aggregated FHIR R4 API. The simulator serves the same contract,
// so the types and identifiers below are shared by both.
package pkb

// FHIR systems and paths fixed by PKB and UK Core.
const (
	PublicIDSystem           = "http://fhir.patientsknowbest.com/id/public-id"
	NHSNumberSystem          = "https://fhir.nhs.uk/Id/nhs-number"
	NHSVerificationExtension = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
	NHSVerificationSystem    = "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland"
	NHSVerifiedCode          = "01"
	SpecialtySystem          = "https://fhir.nhs.uk/CodeSystem/NHSDataModelAndDictionary-treatment-function"

	AuthorizePath = "/apiAuthorize.action"
	TokenPath     = "/apiToken.action"
	MessagesPath  = "/json/messages/after/"
	Scope         = "CLINICIAN"
)

// Message is one PKB message as the messages API returns it. Subject and
// Content are patient data: never log them.
type Message struct {
	ID             string `json:"id"`
	ConversationID string `json:"conversationId"`
	Timestamp      int64  `json:"timestamp"`
	Subject        string `json:"subject"`
	Content        string `json:"content"`
	IsHTML         bool   `json:"isHtml"`
	PatientID      string `json:"patientId"`
	SenderID       string `json:"senderId"`
	TeamID         string `json:"teamId"`
	Status         string `json:"status"`
}

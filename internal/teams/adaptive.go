package teams

import (
	"html"
	"strings"
	"time"

	"github.com/rebookhq/rebook/internal/card"
)

// Verbs of the card's Action.Execute buttons; each press comes back as
// an adaptiveCard/action invoke carrying the verb and the action's data.
const (
	VerbClaim        = "rebook.claim"
	VerbDone         = "rebook.done"
	VerbCantAction   = "rebook.cant-action"
	VerbRebookingYes = "rebook.rebooking-yes"
	VerbRebookingNo  = "rebook.rebooking-no"
)

// Data keys of an action: the request's workflow id, the candidate
// booking of a question, and the reason typed for Can't action.
const (
	DataWorkflow  = "wid"
	DataCandidate = "candidate"
	InputReason   = "reason"
)

type object = map[string]any

func text(s string, more object) object {
	o := object{"type": "TextBlock", "text": s, "wrap": true}
	for k, v := range more {
		o[k] = v
	}
	return o
}

func execute(title, verb string, data object, style string) object {
	o := object{"type": "Action.Execute", "title": title, "verb": verb, "data": data}
	if style != "" {
		o["style"] = style
	}
	return o
}

// mention is a Teams mention of whoever a card names, when they pressed
// a button in Teams: Teams notifies them and shows their display name.
func mention(user string) (string, []Entity) {
	oid, name, ok := card.ParseTeamsUser(user)
	if !ok {
		return card.Mention(user), nil
	}
	at := "<at>" + html.EscapeString(name) + "</at>"
	return at, []Entity{{Type: "mention", Text: at, Mentioned: Account{ID: oid, Name: name}}}
}

// Card lays a request's card out as an Adaptive Card (version 1.5, as
// Teams' Universal Actions need) at a detail level.
func Card(c card.Card, now time.Time, d card.Detail) Activity {
	status := c.Status()
	var entities []Entity
	switch {
	case c.State == card.Claimed:
		at, es := mention(c.ClaimedBy)
		status, entities = "Claimed by "+at, es
	case c.State == card.Closed:
		at, es := mention(c.ClosedBy)
		status, entities = "Closed by "+at, es
	}
	facts := []object{
		{"title": "Specialty", "value": card.OrDash(c.Specialty)},
		{"title": "Clinic", "value": card.OrDash(c.Clinic)},
		{"title": "Appointment", "value": c.When()},
		{"title": "Reference", "value": c.Ref},
		{"title": "Received", "value": card.Age(c.ReceivedAt, now)},
		{"title": "Status", "value": status},
	}
	if d == card.DetailMinimal {
		facts = facts[3:]
		c.CloseNote = ""
	}
	body := []object{
		text(c.Title(), object{"size": "Large", "weight": "Bolder"}),
		{"type": "FactSet", "facts": facts},
	}
	if c.Reason != "" {
		body = append(body, text("**Why triage:** "+c.Reason, nil))
	}
	for _, f := range c.Flags {
		body = append(body, text("⚠ "+f, object{"color": "Warning"}))
	}
	if c.CloseNote != "" {
		body = append(body, text(c.CloseNote, nil))
	}
	var actions []object
	if c.State.Actionable() {
		data := object{DataWorkflow: c.WorkflowID}
		if c.State != card.Claimed {
			actions = append(actions, execute("Claim", VerbClaim, data, ""))
		}
		actions = append(actions, execute("Done", VerbDone, data, "positive"))
		actions = append(actions, object{"type": "Action.ShowCard", "title": "Can't action", "card": object{
			"type": "AdaptiveCard",
			"body": []object{{"type": "Input.Text", "id": InputReason, "label": "Why can't it be actioned?", "isMultiline": true,
				"isRequired": true, "maxLength": 300, "errorMessage": "Say why it can't be actioned."}},
			"actions": []object{execute("Close without action", VerbCantAction, data, "destructive")},
		}})
	}
	if c.DashboardURL != "" {
		actions = append(actions, object{"type": "Action.OpenUrl", "title": "Open in Rebook", "url": c.DashboardURL})
	}
	if len(actions) > 0 {
		body = append(body, object{"type": "ActionSet", "actions": actions})
	}
	content := object{"type": "AdaptiveCard", "$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "version": "1.5", "body": body}
	if len(entities) > 0 {
		content["msteams"] = object{"entities": entities}
	}
	return Activity{Type: "message", Attachments: []Attachment{{ContentType: CardContentType, Content: content}}}
}

// emoji are the Slack short codes Rebook's notices use, as Teams shows
// them.
var emoji = strings.NewReplacer(":warning:", "⚠️", ":rotating_light:", "🚨", ":information_source:", "ℹ️")

// Notice is a plain message in a request's thread, its Slack short codes
// as emoji and its text escaped (Teams reads message text as HTML).
func Notice(s string) Activity {
	return Activity{Type: "message", Text: html.EscapeString(emoji.Replace(strings.TrimSpace(s)))}
}

// Question is a notice that asks "Is this the rebooking?" with Yes and
// No buttons.
func Question(s string, q card.Question) Activity {
	data := object{DataWorkflow: q.WorkflowID, DataCandidate: q.Candidate}
	content := object{"type": "AdaptiveCard", "$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "version": "1.5",
		"body": []object{text(emoji.Replace(s), nil), {"type": "ActionSet", "actions": []object{
			execute("Yes, it is", VerbRebookingYes, data, "positive"), execute("No", VerbRebookingNo, data, ""),
		}}}}
	return Activity{Type: "message", Attachments: []Attachment{{ContentType: CardContentType, Content: content}}}
}

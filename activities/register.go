package activities

import "go.temporal.io/sdk/activity"

// Registry is what can take activities: a worker, or a test environment.
type Registry interface {
	RegisterActivityWithOptions(a interface{}, options activity.RegisterOptions)
}

// Register registers every activity under its name.
func Register(r Registry, a *Activities) {
	for name, fn := range map[string]interface{}{
		NameLoadCursor:        a.LoadCursor,
		NameReadMessages:      a.ReadMessages,
		NameStartRequests:     a.StartRequests,
		NameAdvanceCursor:     a.AdvanceCursor,
		NameFetchMessage:      a.FetchMessage,
		NameMatchAppointment:  a.MatchAppointment,
		NameResolveNationalID: a.ResolveNationalID,
		NameRouteToTeam:       a.RouteToTeam,
		NameCheckAppointment:  a.CheckAppointment,
		NameWatchAppointments: a.WatchAppointments,
		NameRecordState:       a.RecordState,
		NameUpdateCard:        a.UpdateCard,
		NameNotify:            a.Notify,
		NameLoadGrant:         a.LoadGrant,
		NameRefreshGrant:      a.RefreshGrant,
		NameMarkGrantNeed:     a.MarkGrantNeeded,
		NameAskForGrant:       a.AskForGrant,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}

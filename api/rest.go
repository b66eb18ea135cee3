package api

func (h *Handler) routeREST() {}

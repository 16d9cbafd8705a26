"""Model providers behind one interface (`base.Provider`), and the router that picks one by model id."""

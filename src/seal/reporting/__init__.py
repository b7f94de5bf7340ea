"""`seal report`: run directories read without writing to them, and turned into one offline HTML page."""

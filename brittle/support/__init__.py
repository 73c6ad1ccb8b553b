"""Data support: the two tasks (remove, mislabel), the searches over prefix sizes (the paper's
bisection, grid, parallel), the counterfactual tests they query, and the support CDF/AUC."""
